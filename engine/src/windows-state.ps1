# The state folder, keys and proxy on Windows (thin wrappers mocked in Pester; judged in TypeScript).

function Get-ExmitIdentity {
    <# .SYNOPSIS The SID of the user running the engine and whether the process is elevated. #>
    $identity = [System.Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object System.Security.Principal.WindowsPrincipal $identity
    return [ordered]@{
        sid      = $identity.User.Value
        elevated = [bool]$principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)
    }
}

function Get-ExmitPathEntry {
    <# .SYNOPSIS A path's file-system entry without following links; $null when nothing is there. #>
    param([string]$Path)
    try {
        return (Get-Item -LiteralPath $Path -Force -ErrorAction Stop)
    } catch [System.Management.Automation.ItemNotFoundException] {
        return $null
    }
}

function Get-ExmitSddl {
    <# .SYNOPSIS The security descriptor (owner and DACL) of a file or folder in SDDL. #>
    param([string]$Path)
    return [string](Get-Acl -LiteralPath $Path).GetSecurityDescriptorSddlForm([System.Security.AccessControl.AccessControlSections]'Owner, Access')
}

function New-ExmitSecureFolder {
    <# .SYNOPSIS Creates a folder that has the given DACL from its first instant. #>
    param([string]$Path, [string]$Sddl)
    $security = New-Object System.Security.AccessControl.DirectorySecurity
    $security.SetSecurityDescriptorSddlForm($Sddl)
    if ($PSVersionTable.PSEdition -eq 'Core') {
        $null = [System.IO.FileSystemAclExtensions]::Create((New-Object System.IO.DirectoryInfo $Path), $security)
    } else {
        $null = [System.IO.Directory]::CreateDirectory($Path, $security)
    }
}

function New-ExmitSecureFile {
    <# .SYNOPSIS Creates a new file (never over an existing one) that has the given DACL from its first instant, and writes the bytes. #>
    param([string]$Path, [string]$Sddl, [byte[]]$Bytes)
    $security = New-Object System.Security.AccessControl.FileSecurity
    $security.SetSecurityDescriptorSddlForm($Sddl)
    $rights = [System.Security.AccessControl.FileSystemRights]::FullControl
    if ($PSVersionTable.PSEdition -eq 'Core') {
        $stream = [System.IO.FileSystemAclExtensions]::Create((New-Object System.IO.FileInfo $Path), [System.IO.FileMode]::CreateNew, $rights, [System.IO.FileShare]::None, 4096, [System.IO.FileOptions]::None, $security)
    } else {
        $stream = New-Object System.IO.FileStream $Path, ([System.IO.FileMode]::CreateNew), $rights, ([System.IO.FileShare]::None), 4096, ([System.IO.FileOptions]::None), $security
    }
    try {
        $stream.Write($Bytes, 0, $Bytes.Length)
        $stream.Flush($true)
    } finally {
        $stream.Dispose()
    }
}

function Get-ExmitWinHttpSettings {
    <# .SYNOPSIS The WinHTTP proxy setting (what netsh winhttp set proxy writes) as bytes; $null when absent. #>
    $key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections'
    $properties = Get-ItemProperty -LiteralPath $key -Name 'WinHttpSettings' -ErrorAction SilentlyContinue
    if ($null -eq $properties) { return $null }
    return , [byte[]]$properties.WinHttpSettings
}

function Get-ExmitPathSecurity {
    <# .SYNOPSIS For each path: {path, kind (missing, file, folder, link, other), sddl}; links are reported, never followed. #>
    param([string[]]$Paths)
    $entries = foreach ($path in $Paths) {
        $item = Invoke-ExmitLiveSource -Name $path -Script { Get-ExmitPathEntry -Path $path }
        if ($null -eq $item) {
            [ordered]@{ path = $path; kind = 'missing'; sddl = $null }
            continue
        }
        $kind = 'other'
        if (($item.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) {
            $kind = 'link'
        } elseif ($item -is [System.IO.DirectoryInfo]) {
            $kind = 'folder'
        } elseif ($item -is [System.IO.FileInfo]) {
            $kind = 'file'
        }
        $sddl = $null
        if ($kind -ne 'link') { $sddl = Invoke-ExmitLiveSource -Name $path -Script { Get-ExmitSddl -Path $path } }
        [ordered]@{ path = $path; kind = $kind; sddl = $sddl }
    }
    return [ordered]@{ entries = [object[]]@($entries) }
}

function Invoke-ExmitCreateSecure {
    <# .SYNOPSIS Creates a folder or a new file with an ACL; an existing file is refused. #>
    param([string]$Path, [string]$Kind, [string]$Sddl, [byte[]]$Bytes)
    if (-not ($Sddl -match '^D:P')) { throw (New-ExmitError -Kind input -Message ('createSecure: the ACL of {0} must be protected (D:P...)' -f $Path)) }
    try {
        if ($Kind -ceq 'folder') {
            New-ExmitSecureFolder -Path $Path -Sddl $Sddl
        } else {
            New-ExmitSecureFile -Path $Path -Sddl $Sddl -Bytes $Bytes
        }
    } catch {
        if (Test-ExmitError $_.Exception) { throw }
        throw (New-ExmitError -Kind environment -File $Path -Message ('{0}: cannot be created: {1}' -f $Path, $_.Exception.Message))
    }
    return [ordered]@{ created = $Path }
}
