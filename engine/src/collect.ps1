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

function New-ExmitWalkState {
    <# .SYNOPSIS The state collect's folder walks share: folders visited (normalised, case-insensitive), files skipped, the deadline. #>
    param([double]$Seconds = $script:ExmitLimits.CollectWalkSeconds)
    return @{
        Visited  = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
        Skipped  = New-Object 'System.Collections.Generic.List[object]'
        Folders  = 0
        Deadline = [System.DateTime]::UtcNow.AddSeconds($Seconds)
        OutOfTime = $false
    }
}

function Add-ExmitSkipped {
    <# .SYNOPSIS Records a path collect did not copy, and why (the result's `skipped` and collect-errors.txt). #>
    param([hashtable]$State, [string]$Path, [string]$Reason)
    $State.Skipped.Add([ordered]@{ path = $Path; reason = $Reason })
}

function Get-ExmitWalkKey {
    <# .SYNOPSIS A folder's path as the walk compares it: full, without trailing separators (case is ignored by the set). #>
    param([string]$Path)
    $full = [System.IO.Path]::GetFullPath($Path)
    $trimmed = $full.TrimEnd([char[]]@('\', '/'))
    if ($trimmed.Length -eq 0 -or $trimmed.EndsWith(':')) { return $full }
    return $trimmed
}

function Get-ExmitFolderEntries {
    <# .SYNOPSIS A folder's entries, links not followed (thin wrapper, mocked in Pester). #>
    param([System.IO.DirectoryInfo]$Folder)
    return , $Folder.GetFileSystemInfos()
}

function Find-ExmitWebConfigFiles {
    <#
    .SYNOPSIS The web.config files at and below a folder, walked by hand: links and junctions below it are
    not followed (Get-ChildItem -Recurse follows them on Windows PowerShell 5.1), each folder is visited
    once across the walks sharing State, and the walk stops at Limit files or State's deadline.
    .DESCRIPTION Unreadable folders and links are recorded in State.Skipped; a progress event is sent
    every 200 folders. Returns the paths one by one (nothing when there are none).
    #>
    param([string]$Directory, [int]$Limit = $script:ExmitLimits.WebConfigs, [hashtable]$State)
    if ($null -eq $State) { $State = New-ExmitWalkState }
    $found = New-Object System.Collections.Generic.List[string]
    $start = New-Object System.IO.DirectoryInfo $Directory
    if (-not $start.Exists) { return }
    # The folder IIS names is followed even if it is a link (IIS reads it so); only what lies below is walked by hand.
    $stack = New-Object System.Collections.Generic.Stack[System.IO.DirectoryInfo]
    $stack.Push($start)
    while ($stack.Count -gt 0) {
        if ($State.OutOfTime) { break }
        if ([System.DateTime]::UtcNow -gt $State.Deadline) {
            $State.OutOfTime = $true
            Add-ExmitSkipped -State $State -Path $Directory -Reason ('the walk for web.config files ran out of its time budget ({0} seconds); folders not yet walked were not searched' -f $script:ExmitLimits.CollectWalkSeconds)
            break
        }
        $folder = $stack.Pop()
        if (-not $State.Visited.Add((Get-ExmitWalkKey $folder.FullName))) { continue }
        $State.Folders++
        if ($State.Folders % 200 -eq 0) {
            Write-ExmitEvent -Message ('collect: {0} folders walked, now below {1}' -f $State.Folders, $Directory)
        }
        try {
            $entries = Get-ExmitFolderEntries -Folder $folder
        } catch {
            $reason = $_.Exception.Message
            if ($_.Exception.InnerException) { $reason = $_.Exception.InnerException.Message }
            Add-ExmitSkipped -State $State -Path $folder.FullName -Reason ('folder not readable: {0}' -f $reason)
            continue
        }
        $subfolders = New-Object System.Collections.Generic.List[System.IO.DirectoryInfo]
        foreach ($entry in ($entries | Sort-Object -Property Name -CaseSensitive)) {
            if ((Get-ExmitReparseKind $entry) -eq 'link') {
                Add-ExmitSkipped -State $State -Path $entry.FullName -Reason 'a link or junction: not followed (collect stays inside the IIS content)'
                continue
            }
            if ($entry -is [System.IO.DirectoryInfo]) {
                $subfolders.Add($entry)
            } elseif ([string]::Equals($entry.Name, 'web.config', [System.StringComparison]::OrdinalIgnoreCase)) {
                if ($found.Count -ge $Limit) {
                    Add-ExmitSkipped -State $State -Path $entry.FullName -Reason ('more than {0} web.config files: not copied' -f $Limit)
                    return $found.ToArray()
                }
                $found.Add($entry.FullName)
            }
        }
        # Pushed in reverse so that folders are walked in name order.
        for ($index = $subfolders.Count - 1; $index -ge 0; $index--) { $stack.Push($subfolders[$index]) }
    }
    return $found.ToArray()
}

function Get-ExmitConfigSources {
    <# .SYNOPSIS The configSource attribute values of a configuration file's elements (DTDs refused); an error when it is not well-formed XML. #>
    param([byte[]]$Bytes)
    $text = ConvertFrom-ExmitTextBytes -Bytes $Bytes
    $reader = New-ExmitCliXmlReader -Text $text
    $values = New-Object System.Collections.Generic.List[string]
    try {
        while ($reader.Read()) {
            if ($reader.NodeType -ne [System.Xml.XmlNodeType]::Element -or -not $reader.HasAttributes) { continue }
            $value = $reader.GetAttribute('configSource')
            if ($null -ne $value) { $values.Add($value) }
        }
    } finally {
        $reader.Close()
    }
    return , $values.ToArray()
}

function Resolve-ExmitConfigSource {
    <#
    .SYNOPSIS The Windows path of a configSource value, relative to the folder of the file that names it;
    $null when it is not a plain relative path that stays in (or below) that folder.
    #>
    param([string]$ConfigPath, [string]$Value)
    if ([string]::IsNullOrWhiteSpace($Value)) { return $null }
    if ($Value -match '^[\\/]' -or $Value.Contains(':')) { return $null }
    $segments = New-Object System.Collections.Generic.List[string]
    foreach ($segment in $Value.Split([char[]]@('\', '/'))) {
        if ($segment.Length -eq 0 -or $segment -eq '.') { continue }
        if ($segment.Trim().Trim('.').Length -eq 0) { return $null }
        $segments.Add($segment)
    }
    if ($segments.Count -eq 0) { return $null }
    $folder = $ConfigPath.Substring(0, $ConfigPath.LastIndexOf('\'))
    $candidate = $folder + '\' + ($segments -join '\')
    try {
        $null = Split-ExmitWindowsPath $candidate
    } catch {
        return $null
    }
    return $candidate
}

function Copy-ExmitCollectFile {
    <#
    .SYNOPSIS Copies one IIS file of this server into the image unless already copied; an unreadable
    file is recorded in State.Skipped, not fatal. Returns the bytes copied, or $null.
    #>
    param([string]$Root, [string]$WindowsPath, $Copied, $Written, [hashtable]$State)
    try {
        $relative = Get-ExmitImageRelativePath $WindowsPath
    } catch {
        Add-ExmitSkipped -State $State -Path $WindowsPath -Reason ('not a path an image can hold: {0}' -f $_.Exception.Message)
        return $null
    }
    if ($Copied.Contains($relative)) { return $null }
    try {
        $bytes = Get-ExmitFileBytes -Path $WindowsPath
    } catch {
        Add-ExmitSkipped -State $State -Path $WindowsPath -Reason ('not readable: {0}' -f $_.Exception.Message)
        return $null
    }
    if ($null -eq $bytes) { return $null }
    Write-ExmitImageBytes -Root $Root -RelativePath $relative -Bytes $bytes
    $null = $Copied.Add($relative)
    $Written.Add($relative)
    return , $bytes
}

function Copy-ExmitConfigSources {
    <#
    .SYNOPSIS Copies the files a configuration file's configSource attributes name (IIS lets any section
    live in a file of its own, relative to the configuration file's folder); values that leave that
    folder are refused and recorded, as are unreadable files.
    #>
    param([string]$Root, [string]$ConfigPath, [byte[]]$Bytes, $Copied, $Written, [hashtable]$State)
    try {
        $values = Get-ExmitConfigSources -Bytes $Bytes
    } catch {
        Add-ExmitSkipped -State $State -Path $ConfigPath -Reason ('copied, but its configSource files were not looked for: not well-formed XML: {0}' -f $_.Exception.Message)
        return
    }
    foreach ($value in $values) {
        $target = Resolve-ExmitConfigSource -ConfigPath $ConfigPath -Value $value
        if ($null -eq $target) {
            Add-ExmitSkipped -State $State -Path $ConfigPath -Reason ('configSource="{0}" is not a path inside the folder of the file that names it: refused, not copied' -f $value)
            continue
        }
        if ($Copied.Count -ge $script:ExmitLimits.WebConfigs) {
            Add-ExmitSkipped -State $State -Path $target -Reason ('more than {0} configuration files: not copied' -f $script:ExmitLimits.WebConfigs)
            return
        }
        $null = Copy-ExmitCollectFile -Root $Root -WindowsPath $target -Copied $Copied -Written $Written -State $State
    }
}

function New-ExmitCollectFolder {
    <# .SYNOPSIS A new temporary folder beside Root (same volume, so that it can be renamed into place). #>
    param([string]$Root)
    $parent = [System.IO.Path]::GetDirectoryName($Root)
    $null = [System.IO.Directory]::CreateDirectory($parent)
    $name = '.{0}.exmit-collect-{1}' -f [System.IO.Path]::GetFileName($Root), [System.Guid]::NewGuid().ToString('N').Substring(0, 12)
    $temporary = Join-Path $parent $name
    $null = [System.IO.Directory]::CreateDirectory($temporary)
    return $temporary
}

function Complete-ExmitCollectFolder {
    <# .SYNOPSIS Renames the finished temporary folder to Root (which may exist, empty). #>
    param([string]$Temporary, [string]$Root)
    if ([System.IO.Directory]::Exists($Root)) {
        if (@([System.IO.Directory]::GetFileSystemEntries($Root)).Count -gt 0) {
            throw (New-ExmitError -Kind input -Message ('{0} is no longer empty: collect writes only into a new or empty folder' -f $Root))
        }
        [System.IO.Directory]::Delete($Root)
    }
    [System.IO.Directory]::Move($Temporary, $Root)
}

function Invoke-ExmitCollect {
    <#
    .SYNOPSIS Saves a server image of this server into Out (the exports of the product's "Server images"
    table, applicationHost.config, the web.config files at and below each virtual directory and the files
    their configSource attributes name).
    .DESCRIPTION Writes into a temporary folder beside Out and renames it at the end, so that a failure
    never leaves a half-written image. Files that cannot be read are listed in `skipped` and in the
    image's collect-errors.txt.
    #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string]$Out)
    if ([string]::IsNullOrEmpty($Out) -or -not [System.IO.Path]::IsPathRooted($Out)) {
        throw (New-ExmitError -Kind input -Message 'collect needs "out": an absolute folder path')
    }
    $root = [System.IO.Path]::GetFullPath($Out).TrimEnd([char[]]@('\', '/'))
    if ([System.IO.File]::Exists($root)) {
        throw (New-ExmitError -Kind input -Message ('{0} is a file, not a folder' -f $root))
    }
    if ([System.IO.Directory]::Exists($root)) {
        if (@([System.IO.Directory]::GetFileSystemEntries($root)).Count -gt 0) {
            throw (New-ExmitError -Kind input -Message ('{0} is not empty: collect writes only into a new or empty folder' -f $root))
        }
    }
    if (-not $PSCmdlet.ShouldProcess($root, 'collect a server image')) {
        return [ordered]@{ written = [object[]]@(); skipped = [object[]]@() }
    }
    $temporary = New-ExmitCollectFolder -Root $root
    try {
        $result = Invoke-ExmitCollectInto -Root $temporary
        Complete-ExmitCollectFolder -Temporary $temporary -Root $root
    } catch {
        try {
            if ([System.IO.Directory]::Exists($temporary)) { [System.IO.Directory]::Delete($temporary, $true) }
        } catch {
            Write-Verbose ('collect: cannot remove {0}: {1}' -f $temporary, $_.Exception.Message)
        }
        throw
    }
    return $result
}

function Invoke-ExmitCollectInto {
    <# .SYNOPSIS Writes the image's files into Root (Invoke-ExmitCollect's temporary folder) and returns {written, skipped}. #>
    param([string]$Root)
    $root = $Root
    $written = New-Object System.Collections.Generic.List[string]
    $state = New-ExmitWalkState
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
        Copy-ExmitConfigSources -Root $root -ConfigPath $appHostPath -Bytes $bytes -Copied $copied -Written $written -State $state
    }
    $physicalPaths = Invoke-ExmitLiveSource 'IIS virtual directories' { Get-ExmitIisPhysicalPaths }
    # applicationHost.config names the same folders several times (and in varying case): each once.
    $walked = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
    foreach ($physicalPath in @($physicalPaths)) {
        if ([string]::IsNullOrEmpty($physicalPath)) { continue }
        $expanded = (Expand-ExmitEnvironmentText -Text $physicalPath -Environment $environment).TrimEnd('\')
        if ($expanded -notmatch '^[A-Za-z]:\\') { continue }
        try {
            $key = (Split-ExmitWindowsPath $expanded) -join '\'
        } catch {
            Add-ExmitSkipped -State $state -Path $expanded -Reason ('not a folder path an image can hold: {0}' -f $_.Exception.Message)
            continue
        }
        if (-not $walked.Add($key)) { continue }
        $candidates = New-Object System.Collections.Generic.List[string]
        $candidates.Add($expanded + '\web.config')
        Write-ExmitEvent -Message ('collect: looking for web.config files below {0}' -f $expanded)
        try {
            $foundFiles = Find-ExmitWebConfigFiles -Directory $expanded -Limit $script:ExmitLimits.WebConfigs -State $state
        } catch {
            Add-ExmitSkipped -State $state -Path $expanded -Reason ('not searched for web.config files: {0}' -f $_.Exception.Message)
            $foundFiles = @()
        }
        foreach ($found in @($foundFiles)) {
            if ($found) { $candidates.Add([string]$found) }
        }
        foreach ($candidate in $candidates) {
            if ($copied.Count -ge $script:ExmitLimits.WebConfigs) {
                Add-ExmitSkipped -State $state -Path $candidate -Reason ('more than {0} configuration files: not copied' -f $script:ExmitLimits.WebConfigs)
                break
            }
            $bytes = Copy-ExmitCollectFile -Root $root -WindowsPath $candidate -Copied $copied -Written $written -State $state
            if ($null -ne $bytes) {
                Copy-ExmitConfigSources -Root $root -ConfigPath $candidate -Bytes $bytes -Copied $copied -Written $written -State $state
            }
        }
    }
    $skipped = [object[]]$state.Skipped.ToArray()
    if ($skipped.Count -gt 0) {
        $lines = New-Object System.Collections.Generic.List[string]
        $lines.Add('# Files and folders exmit collect did not copy into this image, and why (one per line: path, TAB, reason).')
        foreach ($entry in $skipped) { $lines.Add(('{0}{1}{2}' -f $entry.path, "`t", $entry.reason)) }
        $text = ($lines -join "`r`n") + "`r`n"
        Write-ExmitImageBytes -Root $root -RelativePath 'collect-errors.txt' -Bytes ((New-Object System.Text.UTF8Encoding $false).GetBytes($text))
        $written.Add('collect-errors.txt')
        Write-ExmitEvent -Message ('collect: {0} files or folders not copied (listed in collect-errors.txt)' -f $skipped.Count)
    }
    return [ordered]@{ written = [object[]]$written.ToArray(); skipped = $skipped }
}
