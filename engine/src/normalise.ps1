# Normalisation shared by image and live objects: registry, versions, services, OS, environment, app pools.

function Test-ExmitMember {
    <# .SYNOPSIS True when a CliXml record or a live object has the named property. #>
    param($InputObject, [string]$Name)
    if ($null -eq $InputObject) { return $false }
    if (Test-ExmitCliObject $InputObject) { return $InputObject.Props.Contains($Name) }
    if ($InputObject -is [System.Collections.IDictionary]) { return $InputObject.Contains($Name) }
    return ($null -ne $InputObject.PSObject.Properties[$Name])
}

function Get-ExmitMember {
    <# .SYNOPSIS A property of a CliXml record or of a live object; $null when absent or unreadable. #>
    param($InputObject, [string]$Name)
    if ($null -eq $InputObject) { return $null }
    if (Test-ExmitCliObject $InputObject) {
        if ($InputObject.Props.Contains($Name)) { return $InputObject.Props[$Name] }
        return $null
    }
    if ($InputObject -is [System.Collections.IDictionary]) {
        if ($InputObject.Contains($Name)) { return $InputObject[$Name] }
        return $null
    }
    $property = $InputObject.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    try {
        return $property.Value
    } catch {
        # A live getter can throw (a service that cannot be queried): treat as unreadable.
        Write-Verbose ('property {0} unreadable: {1}' -f $Name, $_.Exception.Message)
        return $null
    }
}

function Get-ExmitMemberNames {
    <# .SYNOPSIS The property names of a CliXml record or a live object, in order. #>
    param($InputObject)
    if (Test-ExmitCliObject $InputObject) { return , @($InputObject.Props.Keys) }
    return , @(foreach ($p in $InputObject.PSObject.Properties) { $p.Name })
}

function ConvertTo-ExmitEnumName {
    <#
    .SYNOPSIS The name of an enum value: its integer through Map when typed (CliXml <I32>, a live
    enum, a deserialized enum), else its text.
    #>
    param($Value, [hashtable]$Map)
    if ($null -eq $Value) { return $null }
    $number = $null
    $text = $null
    if (Test-ExmitCliObject $Value) {
        $text = $Value.Text
        if ($null -ne $Value.Value) {
            if ($Value.Value -is [string]) { $text = $Value.Value } else { $number = $Value.Value }
        }
    } else {
        if ($Value -is [System.Management.Automation.PSObject]) { $Value = $Value.PSObject.BaseObject }
        if ($Value -is [System.Enum]) {
            $number = [System.Convert]::ToInt64($Value)
            $text = $Value.ToString()
        } elseif ($Value -is [string]) {
            $text = $Value
        } elseif ($Value -is [int] -or $Value -is [long] -or $Value -is [uint32] -or $Value -is [int16]) {
            $number = $Value
        } else {
            $text = [string]$Value
        }
    }
    if ($null -ne $number) {
        $key = [int]$number
        if ($Map.ContainsKey($key)) { return $Map[$key] }
        return [string]$number
    }
    return $text
}

function ConvertTo-ExmitBoolean {
    <# .SYNOPSIS A boolean from a typed bool or from "true"/"false" text; $null otherwise. #>
    param($Value)
    if ($null -eq $Value) { return $null }
    # A CliXml object is itself a PSObject: test for it before unwrapping (its base object is a bare PSCustomObject).
    if (Test-ExmitCliObject $Value) {
        if ($Value.Value -is [bool]) { return $Value.Value }
        $Value = ConvertTo-ExmitString $Value
    }
    if ($Value -is [System.Management.Automation.PSObject]) { $Value = $Value.PSObject.BaseObject }
    if ($Value -is [bool]) { return $Value }
    $text = ([string]$Value).Trim()
    if ($text -eq 'true' -or $text -eq '1') { return $true }
    if ($text -eq 'false' -or $text -eq '0') { return $false }
    return $null
}

function ConvertTo-ExmitRegistryValue {
    <# .SYNOPSIS A registry value as JSON scalar: strings, numbers, booleans; REG_MULTI_SZ joined with LF, REG_BINARY as base64. #>
    param($Value)
    if ($null -eq $Value) { return $null }
    if ($Value -is [System.Management.Automation.PSObject] -and -not (Test-ExmitCliObject $Value)) { $Value = $Value.PSObject.BaseObject }
    if (Test-ExmitCliObject $Value) {
        if ($null -ne $Value.Items) {
            return ((@($Value.Items | ForEach-Object { ConvertTo-ExmitString $_ })) -join "`n")
        }
        return (ConvertTo-ExmitString $Value)
    }
    if ($Value -is [byte[]]) { return [System.Convert]::ToBase64String($Value) }
    if ($Value -is [string]) { return $Value }
    if ($Value -is [bool]) { return $Value }
    if ($Value -is [int] -or $Value -is [long] -or $Value -is [int16] -or $Value -is [uint32] -or $Value -is [uint64] -or $Value -is [double] -or $Value -is [byte] -or $Value -is [decimal] -or $Value -is [single]) {
        return $Value
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        return ((@($Value | ForEach-Object { [string]$_ })) -join "`n")
    }
    return [string]$Value
}

function ConvertTo-ExmitRegistryFacts {
    <# .SYNOPSIS RegistryKey[] from Get-ItemProperty objects (live or CliXml): name from PSChildName, values the rest. #>
    param([object[]]$Objects, [string]$Source = 'registry.xml', [string]$Kind = 'image', [switch]$RequireSetup)
    $keys = New-Object System.Collections.Generic.List[object]
    foreach ($object in $Objects) {
        if ($null -eq $object) { continue }
        $name = ConvertTo-ExmitString (Get-ExmitMember $object 'PSChildName')
        if (-not $name) {
            throw (New-ExmitError -Kind $Kind -File $Source -Message ('{0}: an object without PSChildName: not a Get-ItemProperty export of the Exchange registry keys' -f $Source))
        }
        $values = New-ExmitDictionary
        foreach ($propertyName in (Get-ExmitMemberNames $object)) {
            if ($script:ExmitRegistryProviderProperties -contains $propertyName) { continue }
            if ($values.Contains($propertyName)) { continue }
            $values[$propertyName] = ConvertTo-ExmitRegistryValue (Get-ExmitMember $object $propertyName)
        }
        $keys.Add([ordered]@{ name = $name; values = $values })
    }
    if ($RequireSetup) {
        $hasSetup = $false
        foreach ($key in $keys) { if ($key.name -eq 'Setup') { $hasSetup = $true } }
        if (-not $hasSetup) {
            throw (New-ExmitError -Kind $Kind -File $Source -Message ('{0}: no Setup key: not an export of HKLM:\SOFTWARE\Microsoft\ExchangeServer\v15 on an Exchange server' -f $Source))
        }
    }
    return , $keys.ToArray()
}

function ConvertTo-ExmitFileVersionFact {
    <#
    .SYNOPSIS FileVersionFact from a FileVersionInfo (live or CliXml): the typed FileMajorPart..FilePrivatePart,
    else FileVersionRaw; never the padded FileVersion text or ToString.
    #>
    param($Object, [string]$Source, [string]$DefaultFileName, [string]$Kind = 'image')
    $parts = @()
    foreach ($partName in @('FileMajorPart', 'FileMinorPart', 'FileBuildPart', 'FilePrivatePart')) {
        $part = Get-ExmitMember $Object $partName
        if (Test-ExmitCliObject $part) { $part = $part.Value }
        if ($part -is [System.Management.Automation.PSObject]) { $part = $part.PSObject.BaseObject }
        if ($part -is [int] -or $part -is [long] -or $part -is [int16] -or $part -is [uint16] -or $part -is [uint32]) { $parts += [long]$part }
    }
    $version = $null
    if ($parts.Count -eq 4) {
        $version = '{0}.{1}.{2}.{3}' -f $parts[0], $parts[1], $parts[2], $parts[3]
    } else {
        $raw = ConvertTo-ExmitString (Get-ExmitMember $Object 'FileVersionRaw')
        $parsed = $null
        if ($raw -and [System.Version]::TryParse($raw.Trim(), [ref]$parsed)) {
            $build = [System.Math]::Max($parsed.Build, 0)
            $revision = [System.Math]::Max($parsed.Revision, 0)
            $version = '{0}.{1}.{2}.{3}' -f $parsed.Major, $parsed.Minor, $build, $revision
        }
    }
    if ($null -eq $version) {
        throw (New-ExmitError -Kind $Kind -File $Source -Message ('{0}: no FileMajorPart..FilePrivatePart or FileVersionRaw: not a FileVersionInfo export' -f $Source))
    }
    $fileName = ConvertTo-ExmitString (Get-ExmitMember $Object 'FileName')
    if (-not $fileName) { $fileName = $DefaultFileName }
    return [ordered]@{ fileName = $fileName; version = $version }
}

function ConvertTo-ExmitServiceFacts {
    <# .SYNOPSIS ServiceFact[] from ServiceController objects (live or the top-level objects of a Get-Service export). #>
    param([object[]]$Objects, [string]$Source = 'services.xml', [string]$Kind = 'image')
    $services = New-Object System.Collections.Generic.List[object]
    foreach ($object in $Objects) {
        if ($null -eq $object) { continue }
        $name = ConvertTo-ExmitString (Get-ExmitMember $object 'ServiceName')
        if (-not $name) { $name = ConvertTo-ExmitString (Get-ExmitMember $object 'Name') }
        $status = ConvertTo-ExmitEnumName -Value (Get-ExmitMember $object 'Status') -Map $script:ExmitServiceStatusMap
        $startType = ConvertTo-ExmitEnumName -Value (Get-ExmitMember $object 'StartType') -Map $script:ExmitServiceStartMap
        if (-not $name -or -not $status -or -not $startType) {
            throw (New-ExmitError -Kind $Kind -File $Source -Message ('{0}: an object without ServiceName, Status or StartType: not a Get-Service export' -f $Source))
        }
        $displayName = ConvertTo-ExmitString (Get-ExmitMember $object 'DisplayName')
        if ($null -eq $displayName) { $displayName = $name }
        $services.Add([ordered]@{ name = $name; displayName = $displayName; status = $status; startType = $startType })
    }
    return , $services.ToArray()
}

function ConvertTo-ExmitOsFact {
    <# .SYNOPSIS OsFact from a Win32_OperatingSystem instance (live or CliXml). #>
    param([object[]]$Objects, [string]$Source = 'os.xml', [string]$Kind = 'image')
    $object = $null
    foreach ($candidate in $Objects) { if ($null -ne $candidate) { $object = $candidate; break } }
    $caption = ConvertTo-ExmitString (Get-ExmitMember $object 'Caption')
    $version = ConvertTo-ExmitString (Get-ExmitMember $object 'Version')
    $buildNumber = ConvertTo-ExmitString (Get-ExmitMember $object 'BuildNumber')
    if ($null -eq $object -or -not $version -or -not $buildNumber) {
        throw (New-ExmitError -Kind $Kind -File $Source -Message ('{0}: no Version or BuildNumber: not a Win32_OperatingSystem export' -f $Source))
    }
    if ($null -eq $caption) { $caption = '' }
    return [ordered]@{ caption = $caption.Trim(); version = $version; buildNumber = $buildNumber }
}

function ConvertTo-ExmitEnvironmentFact {
    <# .SYNOPSIS Record<name,value> from Get-ChildItem Env: entries (DictionaryEntry: Key/Name and Value). #>
    param([object[]]$Objects, [string]$Source = 'environment.xml', [string]$Kind = 'image')
    $environment = New-ExmitDictionary
    foreach ($object in $Objects) {
        if ($null -eq $object) { continue }
        $name = ConvertTo-ExmitString (Get-ExmitMember $object 'Key')
        if (-not $name) { $name = ConvertTo-ExmitString (Get-ExmitMember $object 'Name') }
        if (-not $name -or -not (Test-ExmitMember $object 'Value')) {
            throw (New-ExmitError -Kind $Kind -File $Source -Message ('{0}: an object without Key and Value: not a Get-ChildItem Env: export' -f $Source))
        }
        $value = ConvertTo-ExmitString (Get-ExmitMember $object 'Value')
        if ($null -eq $value) { $value = '' }
        if (-not $environment.Contains($name)) { $environment[$name] = $value }
    }
    return , $environment
}

function ConvertTo-ExmitAppPoolFacts {
    <# .SYNOPSIS AppPoolFact[] from objects with Name, State, autoStart, startMode (IIS provider export or Microsoft.Web.Administration). #>
    param([object[]]$Objects, [string]$Source = 'apppools.xml', [string]$Kind = 'image')
    $pools = New-Object System.Collections.Generic.List[object]
    foreach ($object in $Objects) {
        if ($null -eq $object) { continue }
        $name = ConvertTo-ExmitString (Get-ExmitMember $object 'Name')
        $state = ConvertTo-ExmitEnumName -Value (Get-ExmitMember $object 'State') -Map $script:ExmitAppPoolStateMap
        $autoStart = ConvertTo-ExmitBoolean (Get-ExmitMember $object 'autoStart')
        $startMode = ConvertTo-ExmitEnumName -Value (Get-ExmitMember $object 'startMode') -Map $script:ExmitAppPoolStartModeMap
        if (-not $name -or -not $state -or $null -eq $autoStart -or -not $startMode) {
            throw (New-ExmitError -Kind $Kind -File $Source -Message ('{0}: an object without Name, State, autoStart or startMode: not an export of IIS:\AppPools with those properties' -f $Source))
        }
        $pools.Add([ordered]@{ name = $name; state = $state; autoStart = $autoStart; startMode = $startMode })
    }
    return , $pools.ToArray()
}

function Get-ExmitWindowsDirectory {
    <# .SYNOPSIS The Windows folder from the environment facts (windir, SystemRoot, SystemDrive); C:\Windows without them. #>
    param($Environment)
    if ($null -ne $Environment) {
        foreach ($name in @('windir', 'SystemRoot')) {
            if ($Environment.Contains($name)) {
                $value = [string]$Environment[$name]
                if ($value -match '^[A-Za-z]:\\[^\\/]') { return $value.TrimEnd('\') }
            }
        }
        if ($Environment.Contains('SystemDrive')) {
            $drive = [string]$Environment['SystemDrive']
            if ($drive -match '^[A-Za-z]:$') { return ($drive + '\Windows') }
        }
    }
    return 'C:\Windows'
}

function Get-ExmitApplicationHostPath {
    <# .SYNOPSIS The Windows path of applicationHost.config for a Windows folder. #>
    param([string]$WindowsDirectory)
    return ($WindowsDirectory + '\System32\inetsrv\config\applicationHost.config')
}

function Expand-ExmitEnvironmentText {
    <# .SYNOPSIS Expands %NAME% from the environment facts (as IIS does for physicalPath); unknown names stay. #>
    param([string]$Text, $Environment)
    if ($null -eq $Text -or $null -eq $Environment) { return $Text }
    $evaluator = [System.Text.RegularExpressions.MatchEvaluator] {
        param($match)
        $name = $match.Groups[1].Value
        if ($Environment.Contains($name)) { return [string]$Environment[$name] }
        return $match.Value
    }.GetNewClosure()
    return [regex]::Replace($Text, '%([^%]+)%', $evaluator)
}

function Select-ExmitServiceFacts {
    <# .SYNOPSIS The ServiceFacts whose name is one of Names (case-insensitive), in their order. #>
    param([object[]]$Facts, [string[]]$Names)
    $wanted = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
    foreach ($name in $Names) { if ($name) { $null = $wanted.Add($name) } }
    $selected = New-Object System.Collections.Generic.List[object]
    foreach ($fact in $Facts) {
        if ($null -ne $fact -and $wanted.Contains([string]$fact.name)) { $selected.Add($fact) }
    }
    return , $selected.ToArray()
}
