# collect: saves a server image of this server, with progress events while it walks folders.

function Get-ExmitImageRelativePath {
    <# .SYNOPSIS The image-relative path (fs/X/a/b) of a Windows path. #>
    param([string]$WindowsPath)
    $segments = Split-ExmitWindowsPath $WindowsPath
    return ('fs/' + ($segments -join '/'))
}

function Write-ExmitImageBytes {
    <# .SYNOPSIS Writes bytes at an image-relative path, creating folders. #>
    param([string]$Root, [string]$RelativePath, [byte[]]$Bytes)
    $full = $Root
    foreach ($part in $RelativePath.Split('/')) { $full = Join-Path $full $part }
    $parent = Split-Path -Parent $full
    if (-not [System.IO.Directory]::Exists($parent)) { $null = [System.IO.Directory]::CreateDirectory($parent) }
    [System.IO.File]::WriteAllBytes($full, $Bytes)
}

function Invoke-ExmitCollect {
    <#
    .SYNOPSIS Saves a server image of this server into Out (the exports of the product's "Server images"
    table, applicationHost.config and the web.config files at and below each virtual directory).
    #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string]$Out)
    if ([string]::IsNullOrEmpty($Out) -or -not [System.IO.Path]::IsPathRooted($Out)) {
        throw (New-ExmitError -Kind input -Message 'collect needs "out": an absolute folder path')
    }
    $root = [System.IO.Path]::GetFullPath($Out)
    if ([System.IO.File]::Exists($root)) {
        throw (New-ExmitError -Kind input -Message ('{0} is a file, not a folder' -f $root))
    }
    if ([System.IO.Directory]::Exists($root)) {
        if (@([System.IO.Directory]::GetFileSystemEntries($root)).Count -gt 0) {
            throw (New-ExmitError -Kind input -Message ('{0} is not empty: collect writes only into a new or empty folder' -f $root))
        }
    }
    $written = New-Object System.Collections.Generic.List[string]
    if (-not $PSCmdlet.ShouldProcess($root, 'collect a server image')) {
        return [ordered]@{ written = [object[]]@() }
    }
    $null = [System.IO.Directory]::CreateDirectory($root)

    Write-ExmitEvent -Message 'collect: reading environment.xml'
    $environmentObjects = Invoke-ExmitLiveSource 'environment.xml' { Get-ExmitEnvironment }
    $environment = $null
    if ($null -ne $environmentObjects) {
        Export-ExmitCliXml -InputObject @($environmentObjects) -Path (Join-Path $root 'environment.xml')
        $written.Add('environment.xml')
        $environment = ConvertTo-ExmitEnvironmentFact -Objects @($environmentObjects) -Source 'environment.xml' -Kind environment
    }
    Write-ExmitEvent -Message 'collect: reading registry.xml'
    $registryObjects = Invoke-ExmitLiveSource 'registry.xml' { Get-ExmitRegistryKeys }
    $registry = $null
    if ($null -ne $registryObjects) {
        Export-ExmitCliXml -InputObject @($registryObjects) -Path (Join-Path $root 'registry.xml')
        $written.Add('registry.xml')
        $registry = ConvertTo-ExmitRegistryFacts -Objects @($registryObjects) -Source 'registry.xml' -Kind environment
    }
    $windowsDirectory = Get-ExmitWindowsDirectory $environment
    $installPath = Get-ExmitInstallPath -Environment $environment -Registry $registry
    if ($installPath) {
        $exsetupPath = $installPath + '\bin\ExSetup.exe'
        Write-ExmitEvent -Message 'collect: reading exsetup.xml'
        $versionInfo = Invoke-ExmitLiveSource 'exsetup.xml' { Get-ExmitFileVersion -Path $exsetupPath }
        if ($null -ne $versionInfo) {
            Export-ExmitCliXml -InputObject @($versionInfo) -Path (Join-Path $root 'exsetup.xml')
            $written.Add('exsetup.xml')
        }
    }
    Write-ExmitEvent -Message 'collect: reading services.xml'
    $services = Invoke-ExmitLiveSource 'services.xml' { Get-ExmitServices }
    if ($null -ne $services) {
        Export-ExmitCliXml -InputObject @($services) -Path (Join-Path $root 'services.xml')
        $written.Add('services.xml')
    }
    $cachToknPath = $windowsDirectory + '\System32\inetsrv\cachtokn.dll'
    Write-ExmitEvent -Message 'collect: reading cachtokn.xml'
    $versionInfo = Invoke-ExmitLiveSource 'cachtokn.xml' { Get-ExmitFileVersion -Path $cachToknPath }
    if ($null -ne $versionInfo) {
        Export-ExmitCliXml -InputObject @($versionInfo) -Path (Join-Path $root 'cachtokn.xml')
        $written.Add('cachtokn.xml')
    }
    Write-ExmitEvent -Message 'collect: reading os.xml'
    $os = Invoke-ExmitLiveSource 'os.xml' { Get-ExmitOperatingSystem }
    if ($null -ne $os) {
        Export-ExmitCliXml -InputObject @($os) -Path (Join-Path $root 'os.xml')
        $written.Add('os.xml')
    }
    Write-ExmitEvent -Message 'collect: reading apppools.xml'
    $pools = Invoke-ExmitLiveSource 'apppools.xml' { Get-ExmitAppPools }
    if ($null -ne $pools) {
        $selected = @($pools | Select-Object Name, State, autoStart, startMode)
        Export-ExmitCliXml -InputObject $selected -Path (Join-Path $root 'apppools.xml')
        $written.Add('apppools.xml')
    }

    $copied = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
    $appHostPath = Get-ExmitApplicationHostPath $windowsDirectory
    Write-ExmitEvent -Message 'collect: reading applicationHost.config'
    $bytes = Invoke-ExmitLiveSource 'applicationHost.config' { Get-ExmitFileBytes -Path $appHostPath }
    if ($null -ne $bytes) {
        $relative = Get-ExmitImageRelativePath $appHostPath
        Write-ExmitImageBytes -Root $root -RelativePath $relative -Bytes $bytes
        $null = $copied.Add($relative)
        $written.Add($relative)
    }
    $physicalPaths = Invoke-ExmitLiveSource 'IIS virtual directories' { Get-ExmitIisPhysicalPaths }
    foreach ($physicalPath in @($physicalPaths)) {
        if ([string]::IsNullOrEmpty($physicalPath)) { continue }
        $expanded = (Expand-ExmitEnvironmentText -Text $physicalPath -Environment $environment).TrimEnd('\')
        if ($expanded -notmatch '^[A-Za-z]:\\') { continue }
        $candidates = New-Object System.Collections.Generic.List[string]
        $candidates.Add($expanded + '\web.config')
        Write-ExmitEvent -Message ('collect: looking for web.config files below {0}' -f $expanded)
        $foundFiles = Invoke-ExmitLiveSource 'web.config' { Find-ExmitWebConfigFiles -Directory $expanded -Limit $script:ExmitLimits.WebConfigs }
        foreach ($found in @($foundFiles)) {
            if ($found) { $candidates.Add([string]$found) }
        }
        foreach ($candidate in $candidates) {
            if ($copied.Count -ge $script:ExmitLimits.WebConfigs) { break }
            $relative = Get-ExmitImageRelativePath $candidate
            if ($copied.Contains($relative)) { continue }
            $bytes = Invoke-ExmitLiveSource $candidate { Get-ExmitFileBytes -Path $candidate }
            if ($null -eq $bytes) { continue }
            Write-ExmitImageBytes -Root $root -RelativePath $relative -Bytes $bytes
            $null = $copied.Add($relative)
            $written.Add($relative)
        }
    }
    return [ordered]@{ written = [object[]]$written.ToArray() }
}
