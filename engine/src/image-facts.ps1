# The image target: gather and readFiles on a server image folder.

function Resolve-ExmitImageRoot {
    <# .SYNOPSIS The image folder's full path; an image error when it is not a folder. #>
    param([string]$Path)
    if ([string]::IsNullOrEmpty($Path)) {
        throw (New-ExmitError -Kind input -Message 'target.path is missing for an image target')
    }
    $full = [System.IO.Path]::GetFullPath($Path)
    if (-not [System.IO.Directory]::Exists($full)) {
        throw (New-ExmitError -Kind image -Message ('the image folder does not exist: {0}' -f $full))
    }
    return $full
}

function Find-ExmitImageFile {
    <# .SYNOPSIS A top-level file of the image by name, case-insensitively; $null when absent. #>
    param([string]$Root, [string]$Name)
    $entry = Find-ExmitDirectoryEntry -Directory $Root -Name $Name
    if ($null -eq $entry) { return $null }
    if ((Get-ExmitReparseKind $entry) -eq 'link') {
        $resolved = Resolve-ExmitImageLink -Entry $entry -Root $Root -WindowsPath $Name
        if ($null -eq $resolved -or -not [System.IO.File]::Exists($resolved)) { return $null }
        return $resolved
    }
    if ($entry -is [System.IO.FileInfo]) { return $entry.FullName }
    throw (New-ExmitError -Kind image -File $Name -Message ('{0}: is not a file' -f $Name))
}

function Read-ExmitImageExport {
    <# .SYNOPSIS The top-level objects of an optional image export, or $null (and the name in Missing) when absent. #>
    param([string]$Root, [string]$Name, [System.Collections.Generic.List[string]]$Missing, [int]$MaxDepth = 4)
    $path = Find-ExmitImageFile -Root $Root -Name $Name
    if ($null -eq $path) {
        $Missing.Add($Name)
        return $null
    }
    return , (Read-ExmitCliXmlFile -Path $path -FileName $Name -MaxDepth $MaxDepth)
}

function Get-ExmitImageFacts {
    <#
    .SYNOPSIS ServerFacts (src/facts.ts) read from a server image folder.
    .PARAMETER Services The service names the run cares about (case-insensitive); $null for all. With
    a list, services.xml is streamed and only those services are parsed.
    #>
    param([string]$Path, [string[]]$Services)
    $root = Resolve-ExmitImageRoot $Path
    $missing = New-Object System.Collections.Generic.List[string]

    $registryPath = Find-ExmitImageFile -Root $root -Name 'registry.xml'
    if ($null -eq $registryPath) {
        throw (New-ExmitError -Kind image -File 'registry.xml' -Message 'registry.xml: not found in the image (it is required)')
    }
    $registryObjects = Read-ExmitCliXmlFile -Path $registryPath -FileName 'registry.xml' -MaxDepth 3
    $registry = ConvertTo-ExmitRegistryFacts -Objects $registryObjects -Source 'registry.xml' -RequireSetup

    $exsetup = $null
    $objects = Read-ExmitImageExport -Root $root -Name 'exsetup.xml' -Missing $missing -MaxDepth 2
    if ($null -ne $objects) {
        $exsetup = ConvertTo-ExmitFileVersionFact -Object (Get-ExmitFirst $objects) -Source 'exsetup.xml' -DefaultFileName 'ExSetup.exe'
    }
    $serviceFacts = $null
    # Only the top-level objects are services; copies nested under DependentServices are snapshots.
    $servicesPath = Find-ExmitImageFile -Root $root -Name 'services.xml'
    if ($null -eq $servicesPath) {
        $missing.Add('services.xml')
    } elseif ($null -eq $Services) {
        $objects = Read-ExmitCliXmlFile -Path $servicesPath -FileName 'services.xml' -MaxDepth 1
        $serviceFacts = ConvertTo-ExmitServiceFacts -Objects $objects -Source 'services.xml'
    } else {
        $objects = Read-ExmitCliXmlEntries -Path $servicesPath -FileName 'services.xml' -Names $Services -MaxDepth 1
        $serviceFacts = Select-ExmitServiceFacts -Facts (ConvertTo-ExmitServiceFacts -Objects $objects -Source 'services.xml') -Names $Services
    }
    $cachtokn = $null
    $objects = Read-ExmitImageExport -Root $root -Name 'cachtokn.xml' -Missing $missing -MaxDepth 2
    if ($null -ne $objects) {
        $cachtokn = ConvertTo-ExmitFileVersionFact -Object (Get-ExmitFirst $objects) -Source 'cachtokn.xml' -DefaultFileName 'cachtokn.dll'
    }
    $os = $null
    $objects = Read-ExmitImageExport -Root $root -Name 'os.xml' -Missing $missing -MaxDepth 2
    if ($null -ne $objects) { $os = ConvertTo-ExmitOsFact -Objects $objects -Source 'os.xml' }
    $environment = $null
    $objects = Read-ExmitImageExport -Root $root -Name 'environment.xml' -Missing $missing -MaxDepth 1
    if ($null -ne $objects) { $environment = ConvertTo-ExmitEnvironmentFact -Objects $objects -Source 'environment.xml' }
    $appPools = $null
    $objects = Read-ExmitImageExport -Root $root -Name 'apppools.xml' -Missing $missing -MaxDepth 2
    if ($null -ne $objects) { $appPools = ConvertTo-ExmitAppPoolFacts -Objects $objects -Source 'apppools.xml' }

    $applicationHost = $null
    $appHostWindowsPath = Get-ExmitApplicationHostPath (Get-ExmitWindowsDirectory $environment)
    $appHostFile = Resolve-ExmitImagePath -ImageRoot $root -WindowsPath $appHostWindowsPath
    if ($null -eq $appHostFile) {
        $missing.Add('applicationHost.config')
    } else {
        $data = ConvertTo-ExmitFileData (Read-ExmitImageFileBytes -Path $appHostFile -DisplayName 'applicationHost.config')
        $applicationHost = [ordered]@{ path = $appHostWindowsPath; data = $data.data; sha256 = $data.sha256 }
    }
    $computerName = $null
    if ($null -ne $environment -and $environment.Contains('COMPUTERNAME')) { $computerName = [string]$environment['COMPUTERNAME'] }

    return (New-ExmitFacts -Kind image -Path $root -ComputerName $computerName -Registry $registry -ExSetup $exsetup `
            -Services $serviceFacts -CachTokn $cachtokn -Os $os -Environment $environment -AppPools $appPools `
            -ApplicationHost $applicationHost -Missing $missing.ToArray())
}

function New-ExmitFacts {
    <# .SYNOPSIS The ServerFacts record, with arrays kept as arrays for ConvertTo-Json. #>
    param($Kind, $Path, $ComputerName, $Registry, $ExSetup, $Services, $CachTokn, $Os, $Environment, $AppPools, $ApplicationHost, [string[]]$Missing)
    $facts = [ordered]@{}
    $facts.target = [ordered]@{ kind = $Kind; path = $Path; computerName = $ComputerName }
    if ($null -eq $Registry) { $facts.registry = $null } else { $facts.registry = [object[]]@($Registry) }
    $facts.exsetup = $ExSetup
    if ($null -eq $Services) { $facts.services = $null } else { $facts.services = [object[]]@($Services) }
    $facts.cachtokn = $CachTokn
    $facts.os = $Os
    $facts.environment = $Environment
    if ($null -eq $AppPools) { $facts.appPools = $null } else { $facts.appPools = [object[]]@($AppPools) }
    $facts.applicationHost = $ApplicationHost
    $facts.missing = [object[]]@($Missing | Where-Object { $null -ne $_ })
    return $facts
}

function Read-ExmitImageFiles {
    <# .SYNOPSIS readFiles for an image: each Windows path's bytes (base64) and SHA-256 from IMAGE/fs, or nulls when absent. #>
    param([string]$Path, [object[]]$Paths)
    $root = Resolve-ExmitImageRoot $Path
    $files = New-Object System.Collections.Generic.List[object]
    foreach ($windowsPath in $Paths) {
        $windowsPath = [string]$windowsPath
        if ($script:ExmitImageFiles -contains $windowsPath) {
            # An export of the image root by its name (services.xml, apppools.xml): what apply changes in an image.
            $export = Find-ExmitImageFile -Root $root -Name $windowsPath
            $bytes = $null
            if ($null -ne $export) { $bytes = Read-ExmitImageFileBytes -Path $export -DisplayName $windowsPath }
            $data = ConvertTo-ExmitFileData $bytes
            $files.Add([ordered]@{ path = $windowsPath; data = $data.data; sha256 = $data.sha256 })
            continue
        }
        $resolved = Resolve-ExmitImagePath -ImageRoot $root -WindowsPath $windowsPath
        $bytes = $null
        if ($null -ne $resolved) { $bytes = Read-ExmitImageFileBytes -Path $resolved -DisplayName $windowsPath }
        $data = ConvertTo-ExmitFileData $bytes
        $files.Add([ordered]@{ path = $windowsPath; data = $data.data; sha256 = $data.sha256 })
    }
    return [ordered]@{ files = [object[]]$files.ToArray() }
}
