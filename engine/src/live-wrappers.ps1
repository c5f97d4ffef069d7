# The live target's thin wrappers around Windows APIs (mocked in Pester).

function Get-ExmitRegistryKeys {
    <# .SYNOPSIS Get-ItemProperty of each key under HKLM:\SOFTWARE\Microsoft\ExchangeServer\v15; $null without Exchange. #>
    $path = 'HKLM:\SOFTWARE\Microsoft\ExchangeServer\v15'
    if (-not (Test-Path -LiteralPath $path)) { return $null }
    return , @(Get-ChildItem -LiteralPath $path | Get-ItemProperty)
}

function Get-ExmitFileVersion {
    <# .SYNOPSIS A file's VersionInfo; $null when the file does not exist. #>
    param([string]$Path)
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) { return $null }
    return (Get-Item -LiteralPath $Path).VersionInfo
}

function Get-ExmitServices {
    <# .SYNOPSIS Get-Service: all services, or those named (literally, not as wildcards) when Name is given. #>
    param([string[]]$Name)
    if ($PSBoundParameters.ContainsKey('Name')) {
        $literal = @(foreach ($item in $Name) { if ($item) { [System.Management.Automation.WildcardPattern]::Escape($item) } })
        if ($literal.Count -eq 0) { return , @() }
        return , @(Get-Service -Name $literal -ErrorAction SilentlyContinue)
    }
    return , @(Get-Service -ErrorAction SilentlyContinue)
}

function Get-ExmitOperatingSystem {
    <# .SYNOPSIS The Win32_OperatingSystem instance. #>
    return (Get-CimInstance -ClassName Win32_OperatingSystem)
}

function Get-ExmitEnvironment {
    <# .SYNOPSIS Get-ChildItem Env: (DictionaryEntry objects). #>
    return , @(Get-ChildItem -Path Env:)
}

function Get-ExmitServerManager {
    <# .SYNOPSIS A Microsoft.Web.Administration ServerManager; $null when IIS is not installed. #>
    $dll = Join-Path $env:windir 'System32\inetsrv\Microsoft.Web.Administration.dll'
    if (-not (Test-Path -LiteralPath $dll -PathType Leaf)) { return $null }
    Add-Type -LiteralPath $dll
    return (New-Object Microsoft.Web.Administration.ServerManager)
}

function Get-ExmitAppPools {
    <# .SYNOPSIS IIS application pools as {Name, State, autoStart, startMode}; $null without IIS. #>
    $manager = Get-ExmitServerManager
    if ($null -eq $manager) { return $null }
    try {
        $pools = foreach ($pool in $manager.ApplicationPools) {
            $state = 'Unknown'
            try {
                $state = $pool.State.ToString()
            } catch {
                # State throws when the Windows Process Activation Service is stopped.
                Write-Verbose ('app pool {0}: state unreadable: {1}' -f $pool.Name, $_.Exception.Message)
            }
            New-Object PSObject -Property ([ordered]@{
                    Name      = $pool.Name
                    State     = $state
                    autoStart = [bool]$pool.AutoStart
                    startMode = $pool.StartMode.ToString()
                })
        }
        return , @($pools)
    } finally {
        $manager.Dispose()
    }
}

function Get-ExmitIisPhysicalPaths {
    <# .SYNOPSIS The physicalPath of every virtual directory of every site and application (unexpanded). #>
    $manager = Get-ExmitServerManager
    if ($null -eq $manager) { return , @() }
    try {
        $paths = foreach ($site in $manager.Sites) {
            foreach ($application in $site.Applications) {
                foreach ($directory in $application.VirtualDirectories) { [string]$directory.PhysicalPath }
            }
        }
        return , @($paths)
    } finally {
        $manager.Dispose()
    }
}

function Get-ExmitFileBytes {
    <# .SYNOPSIS A file's bytes; $null when it does not exist; refused over MaxBytes. #>
    param([string]$Path, [long]$MaxBytes = $script:ExmitLimits.FileBytes)
    return , (Read-ExmitFileBytes -Path $Path -MaxBytes $MaxBytes -Kind environment)
}

function Export-ExmitCliXml {
    <# .SYNOPSIS Export-Clixml of each object (piped, as the one-line commands of the image table do). #>
    param([object[]]$InputObject, [string]$Path)
    $InputObject | Export-Clixml -LiteralPath $Path
}

function Test-ExmitElevated {
    <# .SYNOPSIS Whether the process runs as Administrator; $null off Windows. #>
    if (-not (Test-ExmitWindows)) { return $null }
    $identity = [System.Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object System.Security.Principal.WindowsPrincipal $identity
    return $principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)
}
