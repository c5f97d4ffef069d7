<#
.SYNOPSIS
    exmit's PowerShell engine: gathers facts from an Exchange server or a server image.

.DESCRIPTION
    One self-contained entry (no dot-sourcing), so that it can also be sent to a remote session.
    Protocol (docs/architecture.md): JSON lines on stdin, one compressed JSON line per request on
    stdout, nothing else on stdout. Exits 0 on {"op":"exit"} or end of input.

    Runs on Windows PowerShell 5.1 and PowerShell 7 alike: keep this file ASCII-only and free of
    7-only syntax (scripts/check-ps51.ps1 enforces it).

.PARAMETER NoRun
    Define the functions only (Pester dot-sources the engine with -NoRun).
#>
[CmdletBinding()]
param([switch]$NoRun)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

# Limits for untrusted input (images can come from compromised servers).
$script:ExmitLimits = @{
    CliXmlBytes   = 64MB   # a CliXml export larger than this is refused by name
    CliXmlChars   = 64MB   # XmlReaderSettings.MaxCharactersInDocument
    CliXmlNesting = 64     # nested Obj elements
    FileBytes     = 32MB   # readFiles and applicationHost.config
    PathSegments  = 64
    WebConfigs    = 2000   # collect: web.config files copied at most
}

$script:ExmitPsNamespace = 'http://schemas.microsoft.com/powershell/2004/04'

# System.ServiceProcess.ServiceControllerStatus
$script:ExmitServiceStatusMap = @{
    1 = 'Stopped'; 2 = 'StartPending'; 3 = 'StopPending'; 4 = 'Running'
    5 = 'ContinuePending'; 6 = 'PausePending'; 7 = 'Paused'
}
# System.ServiceProcess.ServiceStartMode
$script:ExmitServiceStartMap = @{ 0 = 'Boot'; 1 = 'System'; 2 = 'Automatic'; 3 = 'Manual'; 4 = 'Disabled' }
# Microsoft.Web.Administration.ObjectState
$script:ExmitAppPoolStateMap = @{ 0 = 'Starting'; 1 = 'Started'; 2 = 'Stopping'; 3 = 'Stopped'; 4 = 'Unknown' }
# Microsoft.Web.Administration.StartMode
$script:ExmitAppPoolStartModeMap = @{ 0 = 'OnDemand'; 1 = 'AlwaysRunning' }

# Get-ItemProperty adds these to every registry key; they are not registry values.
$script:ExmitRegistryProviderProperties = @('PSPath', 'PSParentPath', 'PSChildName', 'PSDrive', 'PSProvider', 'PSIsContainer')

# The image's file names, also used in `missing` for live sources.
$script:ExmitImageFiles = @('registry.xml', 'exsetup.xml', 'services.xml', 'cachtokn.xml', 'os.xml', 'environment.xml', 'apppools.xml')

# Windows PowerShell 5.1 serialises PSObject-wrapped arrays as {"value":[...],"Count":n} because
# of System.Array's type data; this process is ours, so drop it.
if ($PSVersionTable.PSVersion.Major -lt 6) {
    if (Get-TypeData -TypeName System.Array) {
        Remove-TypeData -TypeName System.Array
    }
}

#region errors

function New-ExmitError {
    <# .SYNOPSIS Makes the exception that the protocol turns into {"ok":false,"error":{kind,message,file}}. #>
    param(
        [Parameter(Mandatory = $true)][ValidateSet('image', 'input', 'environment', 'internal')][string]$Kind,
        [Parameter(Mandatory = $true)][string]$Message,
        [string]$File
    )
    $oneLine = ($Message -replace '[\r\n]+', ' ').Trim()
    $exception = New-Object System.InvalidOperationException $oneLine
    $exception.Data['exmitKind'] = $Kind
    if ($File) {
        $exception.Data['exmitFile'] = $File
    } else {
        $exception.Data['exmitFile'] = $null
    }
    return $exception
}

function Test-ExmitError {
    <# .SYNOPSIS True when an exception was made by New-ExmitError. #>
    param($Exception)
    if ($null -eq $Exception) { return $false }
    return ($null -ne $Exception.Data -and $Exception.Data.Contains('exmitKind'))
}

function ConvertTo-ExmitErrorObject {
    <# .SYNOPSIS The protocol's error object for any error record or exception. #>
    param($ErrorRecord)
    $exception = $ErrorRecord
    if ($ErrorRecord -is [System.Management.Automation.ErrorRecord]) {
        $exception = $ErrorRecord.Exception
    }
    # Unwrap exceptions that PowerShell wraps around ours (method invocation, runtime).
    $probe = $exception
    while ($null -ne $probe) {
        if (Test-ExmitError $probe) { $exception = $probe; break }
        $probe = $probe.InnerException
    }
    $result = [ordered]@{ kind = 'internal'; message = ''; file = $null }
    if (Test-ExmitError $exception) {
        $result.kind = [string]$exception.Data['exmitKind']
        $result.file = $exception.Data['exmitFile']
    }
    $message = [string]$exception.Message
    $result.message = ($message -replace '[\r\n]+', ' ').Trim()
    return $result
}

#endregion

#region small helpers

function Get-ExmitField {
    <# .SYNOPSIS A property of a parsed JSON object, or $null when absent (StrictMode-safe). #>
    param($Object, [string]$Name)
    if ($null -eq $Object) { return $null }
    # The comma keeps an empty or one-element JSON array an array for the caller.
    if ($Object -is [System.Collections.IDictionary]) {
        if ($Object.Contains($Name)) { return , $Object[$Name] }
        return $null
    }
    $property = $Object.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    return , $property.Value
}

function New-ExmitDictionary {
    <# .SYNOPSIS An ordered dictionary whose keys are unique regardless of case. #>
    return , [System.Collections.Specialized.OrderedDictionary]::new([System.StringComparer]::OrdinalIgnoreCase)
}

function Test-ExmitWindows {
    <# .SYNOPSIS True on Windows (Windows PowerShell 5.1 has no $IsWindows). #>
    return ([System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Win32NT)
}

function ConvertFrom-ExmitTextBytes {
    <#
    .SYNOPSIS Decodes a file's bytes: UTF-16LE/BE or UTF-8 by BOM (removed), else UTF-8.
    .PARAMETER Strict Throw on bytes that are not valid in the encoding (CliXml).
    #>
    param([byte[]]$Bytes, [switch]$Strict)
    if ($null -eq $Bytes) { return $null }
    $length = $Bytes.Length
    if ($length -ge 2 -and $Bytes[0] -eq 0xFF -and $Bytes[1] -eq 0xFE) {
        $encoding = New-Object System.Text.UnicodeEncoding $false, $false, ([bool]$Strict)
        return $encoding.GetString($Bytes, 2, $length - 2)
    }
    if ($length -ge 2 -and $Bytes[0] -eq 0xFE -and $Bytes[1] -eq 0xFF) {
        $encoding = New-Object System.Text.UnicodeEncoding $true, $false, ([bool]$Strict)
        return $encoding.GetString($Bytes, 2, $length - 2)
    }
    $utf8 = New-Object System.Text.UTF8Encoding $false, ([bool]$Strict)
    if ($length -ge 3 -and $Bytes[0] -eq 0xEF -and $Bytes[1] -eq 0xBB -and $Bytes[2] -eq 0xBF) {
        return $utf8.GetString($Bytes, 3, $length - 3)
    }
    # UTF-16LE without a BOM: '<' followed by a zero byte.
    if ($length -ge 4 -and $Bytes[0] -eq 0x3C -and $Bytes[1] -eq 0x00 -and $Bytes[2] -ne 0x00 -and $Bytes[3] -eq 0x00) {
        $encoding = New-Object System.Text.UnicodeEncoding $false, $false, ([bool]$Strict)
        return $encoding.GetString($Bytes)
    }
    return $utf8.GetString($Bytes)
}

function ConvertTo-ExmitString {
    <# .SYNOPSIS A scalar as a string: CliXml objects by their typed value, else their text. #>
    param($Value)
    if ($null -eq $Value) { return $null }
    if ($Value -is [System.Management.Automation.PSObject]) { $Value = $Value.PSObject.BaseObject }
    if (Test-ExmitCliObject $Value) {
        if ($null -ne $Value.Value) { return [string]$Value.Value }
        return $Value.Text
    }
    if ($Value -is [string]) { return $Value }
    return [string]$Value
}

#endregion

#region CliXml reader (data only: no DTD, no type rehydration)

function ConvertFrom-ExmitCliXmlEscape {
    <# .SYNOPSIS Decodes CliXml's _xHHHH_ escapes (_x000D__x000A_ is CRLF). #>
    param([string]$Text)
    if ($null -eq $Text) { return $null }
    if ($Text.IndexOf('_x', [System.StringComparison]::Ordinal) -lt 0) { return $Text }
    $evaluator = [System.Text.RegularExpressions.MatchEvaluator] {
        param($match)
        return [string][char][System.Convert]::ToInt32($match.Groups[1].Value, 16)
    }
    return [regex]::Replace($Text, '_x([0-9A-Fa-f]{4})_', $evaluator)
}

function Test-ExmitCliObject {
    <# .SYNOPSIS True for an object the CliXml reader made from an <Obj>. #>
    param($Value)
    if ($null -eq $Value) { return $false }
    if ($Value -isnot [System.Management.Automation.PSObject]) { return $false }
    return ($Value.PSObject.TypeNames -contains 'Exmit.CliObject')
}

function Get-ExmitChildElements {
    <# .SYNOPSIS The element children of an XML node (whitespace and text skipped). #>
    param([System.Xml.XmlNode]$Node)
    # XPath '*' selects the element children in compiled code (a PowerShell loop is slow on big exports).
    return , $Node.SelectNodes('*')
}

function ConvertFrom-ExmitCliXmlPrimitive {
    <# .SYNOPSIS The value of a CliXml primitive element (S, I32, B, Version, ...), as data. #>
    param($Element)
    $text = $Element.InnerText
    switch -CaseSensitive ($Element.LocalName) {
        'Nil' { return $null }
        'S' { return (ConvertFrom-ExmitCliXmlEscape $text) }
        'B' { return [System.Xml.XmlConvert]::ToBoolean($text.Trim()) }
        'I32' { return [System.Xml.XmlConvert]::ToInt32($text.Trim()) }
        'I64' { return [System.Xml.XmlConvert]::ToInt64($text.Trim()) }
        'I16' { return [System.Xml.XmlConvert]::ToInt16($text.Trim()) }
        'U16' { return [System.Xml.XmlConvert]::ToUInt16($text.Trim()) }
        'U32' { return [System.Xml.XmlConvert]::ToUInt32($text.Trim()) }
        'U64' { return [System.Xml.XmlConvert]::ToUInt64($text.Trim()) }
        'By' { return [System.Xml.XmlConvert]::ToByte($text.Trim()) }
        'SB' { return [System.Xml.XmlConvert]::ToSByte($text.Trim()) }
        'Db' { return [System.Xml.XmlConvert]::ToDouble($text.Trim()) }
        'Sg' { return [System.Xml.XmlConvert]::ToSingle($text.Trim()) }
        'D' { return [System.Xml.XmlConvert]::ToDecimal($text.Trim()) }
        'C' { return [string][char][System.Xml.XmlConvert]::ToUInt16($text.Trim()) }
        default { return (ConvertFrom-ExmitCliXmlEscape $text) }
    }
}

function ConvertFrom-ExmitCliXmlNode {
    <# .SYNOPSIS Converts one CliXml value element; Obj and Ref become Exmit.CliObject records. #>
    param($Element, $Context, [int]$Depth, [int]$MaxDepth)
    $name = $Element.LocalName
    if ($name -eq 'Obj') {
        return (ConvertFrom-ExmitCliXmlObject -Element $Element -Context $Context -Depth $Depth -MaxDepth $MaxDepth)
    }
    if ($name -eq 'Ref') {
        $refId = $Element.GetAttribute('RefId')
        if (-not $Context.Objects.ContainsKey($refId)) {
            throw (New-ExmitError -Kind image -File $Context.File -Message ("{0}: not a valid CliXml export (Ref to unknown RefId '{1}')" -f $Context.File, $refId))
        }
        $key = '{0}|{1}' -f $refId, $Depth
        if ($Context.Cache.ContainsKey($key)) { return $Context.Cache[$key] }
        $value = ConvertFrom-ExmitCliXmlObject -Element $Context.Objects[$refId] -Context $Context -Depth $Depth -MaxDepth $MaxDepth
        $Context.Cache[$key] = $value
        return $value
    }
    return (ConvertFrom-ExmitCliXmlPrimitive -Element $Element)
}

function ConvertFrom-ExmitCliXmlObject {
    <#
    .SYNOPSIS Converts an <Obj> into a plain record: TypeNames, Text (ToString), Value (an enum's or
    primitive's typed value), Props (Props then MS, case-insensitive), Items (LST/IE/STK/QUE), Dict.
    .DESCRIPTION Objects at MaxDepth keep their type names, text and typed value only.
    #>
    param($Element, $Context, [int]$Depth, [int]$MaxDepth)
    if ($Depth -gt $Context.Nesting) {
        throw (New-ExmitError -Kind image -File $Context.File -Message ('{0}: objects nested more than {1} deep' -f $Context.File, $Context.Nesting))
    }
    $typeNames = @()
    $text = $null
    $value = $null
    $props = [System.Collections.Specialized.OrderedDictionary]::new([System.StringComparer]::OrdinalIgnoreCase)
    $items = $null
    $dict = $null
    $shallow = ($Depth -ge $MaxDepth)
    foreach ($child in $Element.SelectNodes('*')) {
        $childName = $child.LocalName
        if ($childName -eq 'TN') {
            $typeNames = @(foreach ($t in (Get-ExmitChildElements $child)) { ConvertFrom-ExmitCliXmlEscape $t.InnerText })
            $tnId = $child.GetAttribute('RefId')
            if ($tnId) { $Context.TypeNames[$tnId] = $typeNames }
        } elseif ($childName -eq 'TNRef') {
            $tnId = $child.GetAttribute('RefId')
            if ($Context.TypeNames.ContainsKey($tnId)) { $typeNames = $Context.TypeNames[$tnId] }
        } elseif ($childName -eq 'ToString') {
            $text = $child.InnerText
            if ($text.IndexOf('_x', [System.StringComparison]::Ordinal) -ge 0) { $text = ConvertFrom-ExmitCliXmlEscape $text }
        } elseif ($childName -eq 'Props' -or $childName -eq 'MS') {
            if (-not $shallow) {
                foreach ($property in $child.SelectNodes('*')) {
                    $propertyName = $property.GetAttribute('N')
                    if ($propertyName.IndexOf('_x', [System.StringComparison]::Ordinal) -ge 0) { $propertyName = ConvertFrom-ExmitCliXmlEscape $propertyName }
                    if (-not $propertyName) { continue }
                    if ($props.Contains($propertyName)) { continue }
                    # The common primitives inline: function calls dominate the cost on big exports.
                    $kind = $property.LocalName
                    if ($kind -ceq 'S') {
                        $propertyValue = $property.InnerText
                        if ($propertyValue.IndexOf('_x', [System.StringComparison]::Ordinal) -ge 0) { $propertyValue = ConvertFrom-ExmitCliXmlEscape $propertyValue }
                    } elseif ($kind -ceq 'Nil') {
                        $propertyValue = $null
                    } elseif ($kind -ceq 'B') {
                        $propertyValue = [System.Xml.XmlConvert]::ToBoolean($property.InnerText.Trim())
                    } elseif ($kind -ceq 'I32') {
                        $propertyValue = [System.Xml.XmlConvert]::ToInt32($property.InnerText.Trim())
                    } elseif ($kind -ceq 'Obj') {
                        $propertyValue = ConvertFrom-ExmitCliXmlObject -Element $property -Context $Context -Depth ($Depth + 1) -MaxDepth $MaxDepth
                    } elseif ($kind -ceq 'Ref') {
                        $propertyValue = ConvertFrom-ExmitCliXmlNode -Element $property -Context $Context -Depth ($Depth + 1) -MaxDepth $MaxDepth
                    } else {
                        $propertyValue = ConvertFrom-ExmitCliXmlPrimitive -Element $property
                    }
                    $props[$propertyName] = $propertyValue
                }
            }
        } elseif ($childName -eq 'LST' -or $childName -eq 'IE' -or $childName -eq 'STK' -or $childName -eq 'QUE') {
            if (-not $shallow) {
                $list = [System.Collections.Generic.List[object]]::new()
                foreach ($item in (Get-ExmitChildElements $child)) {
                    $list.Add((ConvertFrom-ExmitCliXmlNode -Element $item -Context $Context -Depth ($Depth + 1) -MaxDepth $MaxDepth))
                }
                $items = $list.ToArray()
            }
        } elseif ($childName -eq 'DCT') {
            if (-not $shallow) {
                $dict = New-ExmitDictionary
                foreach ($entry in (Get-ExmitChildElements $child)) {
                    $entryKey = $null
                    $entryValue = $null
                    foreach ($part in (Get-ExmitChildElements $entry)) {
                        $partName = $part.GetAttribute('N')
                        $converted = ConvertFrom-ExmitCliXmlNode -Element $part -Context $Context -Depth ($Depth + 1) -MaxDepth $MaxDepth
                        if ($partName -eq 'Key') { $entryKey = ConvertTo-ExmitString $converted }
                        if ($partName -eq 'Value') { $entryValue = $converted }
                    }
                    if ($null -ne $entryKey -and -not $dict.Contains($entryKey)) { $dict[$entryKey] = $entryValue }
                }
            }
        } elseif ($childName -ne 'Obj' -and $childName -ne 'Ref') {
            # The typed value of an enum (<I32>) or of an extended primitive (<S>, <Version>, ...).
            if ($childName -ceq 'I32') {
                $value = [System.Xml.XmlConvert]::ToInt32($child.InnerText.Trim())
            } else {
                $value = ConvertFrom-ExmitCliXmlPrimitive -Element $child
            }
        }
    }
    return [pscustomobject]@{
        PSTypeName = 'Exmit.CliObject'
        TypeNames  = [string[]]$typeNames
        Text       = $text
        Value      = $value
        Props      = $props
        Items      = $items
        Dict       = $dict
    }
}

function Read-ExmitCliXmlFile {
    <#
    .SYNOPSIS Reads a CliXml export as data and returns its top-level values (one per exported object).
    .DESCRIPTION Refuses files over the size limit, DTDs, entity expansion and anything that is not a
    PowerShell CliXml document; every failure is an image error naming FileName.
    #>
    param(
        [Parameter(Mandatory = $true)][string]$Path,
        [Parameter(Mandatory = $true)][string]$FileName,
        [int]$MaxDepth = 4,
        [long]$MaxBytes = $script:ExmitLimits.CliXmlBytes
    )
    try {
        $info = New-Object System.IO.FileInfo $Path
        if (-not $info.Exists) {
            throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not found' -f $FileName))
        }
        if ($info.Length -gt $MaxBytes) {
            throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: larger than the limit of {1} bytes ({2} bytes)' -f $FileName, $MaxBytes, $info.Length))
        }
        $bytes = [System.IO.File]::ReadAllBytes($info.FullName)
        try {
            $text = ConvertFrom-ExmitTextBytes -Bytes $bytes -Strict
        } catch {
            throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not readable as UTF-16 or UTF-8 text' -f $FileName))
        }
        $settings = New-Object System.Xml.XmlReaderSettings
        $settings.DtdProcessing = [System.Xml.DtdProcessing]::Prohibit
        $settings.XmlResolver = $null
        $settings.MaxCharactersInDocument = $script:ExmitLimits.CliXmlChars
        $settings.MaxCharactersFromEntities = 1024
        $settings.IgnoreComments = $true
        $settings.IgnoreProcessingInstructions = $true
        $stringReader = New-Object System.IO.StringReader $text
        $xmlReader = [System.Xml.XmlReader]::Create($stringReader, $settings)
        $document = New-Object System.Xml.XmlDocument
        $document.XmlResolver = $null
        $document.PreserveWhitespace = $true
        try {
            $document.Load($xmlReader)
        } catch {
            $reason = $_.Exception.Message
            if ($_.Exception.InnerException) { $reason = $_.Exception.InnerException.Message }
            throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not well-formed XML: {1}' -f $FileName, $reason))
        } finally {
            $xmlReader.Close()
        }
        $root = $document.DocumentElement
        if ($null -eq $root -or $root.LocalName -ne 'Objs' -or $root.NamespaceURI -ne $script:ExmitPsNamespace) {
            throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not a PowerShell CliXml export (no Objs root element)' -f $FileName))
        }
        $context = @{
            File      = $FileName
            Objects   = @{}
            TypeNames = @{}
            Cache     = @{}
            Nesting   = $script:ExmitLimits.CliXmlNesting
        }
        foreach ($obj in $document.GetElementsByTagName('Obj', $script:ExmitPsNamespace)) {
            $refId = $obj.GetAttribute('RefId')
            if ($refId -and -not $context.Objects.ContainsKey($refId)) { $context.Objects[$refId] = $obj }
        }
        # TN elements may be referenced (TNRef) from objects converted out of document order (Ref).
        foreach ($tn in $document.GetElementsByTagName('TN', $script:ExmitPsNamespace)) {
            $tnId = $tn.GetAttribute('RefId')
            if ($tnId -and -not $context.TypeNames.ContainsKey($tnId)) {
                $context.TypeNames[$tnId] = @(foreach ($t in (Get-ExmitChildElements $tn)) { ConvertFrom-ExmitCliXmlEscape $t.InnerText })
            }
        }
        $values = New-Object System.Collections.Generic.List[object]
        foreach ($element in (Get-ExmitChildElements $root)) {
            $values.Add((ConvertFrom-ExmitCliXmlNode -Element $element -Context $context -Depth 0 -MaxDepth $MaxDepth))
        }
        return , $values.ToArray()
    } catch {
        if (Test-ExmitError $_.Exception) { throw }
        throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not a valid CliXml export: {1}' -f $FileName, $_.Exception.Message))
    }
}

#endregion

#region normalisation (shared by image and live objects)

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
    if ($Value -is [System.Management.Automation.PSObject]) { $Value = $Value.PSObject.BaseObject }
    if (Test-ExmitCliObject $Value) { $Value = ConvertTo-ExmitString $Value }
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

#endregion

#region Windows paths and the image's fs/ tree

function Split-ExmitWindowsPath {
    <#
    .SYNOPSIS Splits an absolute Windows path (X:\a\b) into the drive letter and its segments.
    .DESCRIPTION Refuses (input error) non-drive paths, '..' or dots-only segments, stream and
    wildcard characters. '.' and empty segments are dropped, trailing dots and spaces removed (as Windows does).
    #>
    param([string]$Path)
    if ([string]::IsNullOrEmpty($Path)) {
        throw (New-ExmitError -Kind input -Message 'a path is empty')
    }
    if ($Path -notmatch '^([A-Za-z]):[\\/]') {
        throw (New-ExmitError -Kind input -Message ('not an absolute Windows path with a drive letter: {0}' -f $Path))
    }
    $drive = $Path.Substring(0, 1).ToUpperInvariant()
    $segments = New-Object System.Collections.Generic.List[string]
    $segments.Add($drive)
    foreach ($raw in $Path.Substring(3).Split([char[]]@('\', '/'))) {
        if ($raw.Length -eq 0 -or $raw -eq '.') { continue }
        if ($raw -match '^\.{2,}$' -or $raw.Trim().Trim('.').Length -eq 0) {
            throw (New-ExmitError -Kind input -Message ('a path with a ".." segment is refused: {0}' -f $Path))
        }
        if ($raw -match '[:*?"<>|\x00-\x1f]') {
            throw (New-ExmitError -Kind input -Message ('a path with a character Windows does not allow in names is refused: {0}' -f $Path))
        }
        $segments.Add($raw.TrimEnd('. '.ToCharArray()))
    }
    if ($segments.Count -gt $script:ExmitLimits.PathSegments) {
        throw (New-ExmitError -Kind input -Message ('a path with more than {0} segments is refused: {1}' -f $script:ExmitLimits.PathSegments, $Path))
    }
    return , $segments.ToArray()
}

function Test-ExmitPathInside {
    <# .SYNOPSIS True when FullPath is Root or below it. #>
    param([string]$FullPath, [string]$Root)
    $comparison = [System.StringComparison]::Ordinal
    if (Test-ExmitWindows) { $comparison = [System.StringComparison]::OrdinalIgnoreCase }
    $rootWithSeparator = $Root.TrimEnd([char[]]@('\', '/')) + [System.IO.Path]::DirectorySeparatorChar
    if ([string]::Equals($FullPath.TrimEnd([char[]]@('\', '/')), $Root.TrimEnd([char[]]@('\', '/')), $comparison)) { return $true }
    return $FullPath.StartsWith($rootWithSeparator, $comparison)
}

function Find-ExmitDirectoryEntries {
    <# .SYNOPSIS The entries of Directory named Name, compared case-insensitively: an exact match first, then ordinal order. #>
    param([string]$Directory, [string]$Name)
    $directoryInfo = New-Object System.IO.DirectoryInfo $Directory
    if (-not $directoryInfo.Exists) { return , @() }
    $exact = @()
    $others = @()
    foreach ($entry in $directoryInfo.GetFileSystemInfos()) {
        if ([string]::Equals($entry.Name, $Name, [System.StringComparison]::Ordinal)) { $exact += $entry }
        elseif ([string]::Equals($entry.Name, $Name, [System.StringComparison]::OrdinalIgnoreCase)) { $others += $entry }
    }
    $sorted = @($others | Sort-Object -Property Name -CaseSensitive)
    return , @($exact + $sorted)
}

function Find-ExmitDirectoryEntry {
    <# .SYNOPSIS The entry of Directory named Name, compared case-insensitively (an exact match wins). #>
    param([string]$Directory, [string]$Name)
    $entries = Find-ExmitDirectoryEntries -Directory $Directory -Name $Name
    if ($entries.Count -eq 0) { return $null }
    return $entries[0]
}

function Resolve-ExmitImageLink {
    <# .SYNOPSIS The final target of a link inside the image; refused when it leaves the image or cannot be resolved safely. #>
    param([System.IO.FileSystemInfo]$Entry, [string]$Root, [string]$WindowsPath)
    $method = $Entry.GetType().GetMethod('ResolveLinkTarget', [type[]]@([bool]))
    if ($null -eq $method) {
        throw (New-ExmitError -Kind image -Message ('{0} is a link in the image, which this PowerShell cannot resolve safely: refused' -f $WindowsPath))
    }
    $target = $Entry.ResolveLinkTarget($true)
    if ($null -eq $target) { return $null }
    $full = [System.IO.Path]::GetFullPath($target.FullName)
    if (-not (Test-ExmitPathInside -FullPath $full -Root $Root)) {
        throw (New-ExmitError -Kind image -Message ('{0} resolves outside the image: refused' -f $WindowsPath))
    }
    return $full
}

function Resolve-ExmitImagePath {
    <#
    .SYNOPSIS Maps a Windows path X:\a\b to IMAGE/fs/X/a/b, each segment resolved case-insensitively.
    .DESCRIPTION Returns the file's full path, or $null when there is no such file. Never leaves the image:
    '..' is refused and links are followed only while they stay inside it.
    #>
    param([string]$ImageRoot, [string]$WindowsPath)
    $segments = Split-ExmitWindowsPath $WindowsPath
    $root = [System.IO.Path]::GetFullPath($ImageRoot)
    $rootEntry = New-Object System.IO.DirectoryInfo $root
    if (($rootEntry.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) {
        $resolvedRoot = $rootEntry.GetType().GetMethod('ResolveLinkTarget', [type[]]@([bool]))
        if ($null -ne $resolvedRoot) {
            $linkTarget = $rootEntry.ResolveLinkTarget($true)
            if ($null -ne $linkTarget) { $root = [System.IO.Path]::GetFullPath($linkTarget.FullName) }
        }
    }
    # 'fs' goes through the same checks as the path's own segments (it could be a link too).
    $segments = @('fs') + @($segments)
    $state = @{ Visited = 0 }
    return (Find-ExmitImageSegment -Directory $root -Segments $segments -Index 0 -Root $root -WindowsPath $WindowsPath -State $state)
}

function Find-ExmitImageSegment {
    <#
    .SYNOPSIS Resolves Segments[Index..] below Directory. On a case-sensitive file system an image can
    hold C/ and c/ side by side, which Windows would see as one folder: every candidate is tried.
    #>
    param([string]$Directory, [string[]]$Segments, [int]$Index, [string]$Root, [string]$WindowsPath, [hashtable]$State)
    $isLast = ($Index -eq $Segments.Count - 1)
    foreach ($entry in (Find-ExmitDirectoryEntries -Directory $Directory -Name $Segments[$Index])) {
        $State.Visited++
        if ($State.Visited -gt 1000) {
            throw (New-ExmitError -Kind image -Message ('{0}: too many case variants of its folders in the image' -f $WindowsPath))
        }
        $entryPath = $entry.FullName
        if (($entry.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) {
            $entryPath = Resolve-ExmitImageLink -Entry $entry -Root $Root -WindowsPath $WindowsPath
            if ($null -eq $entryPath) { continue }
        }
        if (-not (Test-ExmitPathInside -FullPath $entryPath -Root $Root)) {
            throw (New-ExmitError -Kind image -Message ('{0} resolves outside the image: refused' -f $WindowsPath))
        }
        if ($isLast) {
            if ([System.IO.File]::Exists($entryPath)) { return $entryPath }
            continue
        }
        if (-not [System.IO.Directory]::Exists($entryPath)) { continue }
        $found = Find-ExmitImageSegment -Directory $entryPath -Segments $Segments -Index ($Index + 1) -Root $Root -WindowsPath $WindowsPath -State $State
        if ($null -ne $found) { return $found }
    }
    return $null
}

function Read-ExmitTextFile {
    <# .SYNOPSIS A file's text with its BOM removed, refusing files over the size limit. #>
    param([string]$Path, [string]$DisplayName, [long]$MaxBytes = $script:ExmitLimits.FileBytes, [string]$Kind = 'image')
    $info = New-Object System.IO.FileInfo $Path
    if (-not $info.Exists) { return $null }
    if ($info.Length -gt $MaxBytes) {
        throw (New-ExmitError -Kind $Kind -File $DisplayName -Message ('{0}: larger than the limit of {1} bytes ({2} bytes)' -f $DisplayName, $MaxBytes, $info.Length))
    }
    return (ConvertFrom-ExmitTextBytes -Bytes ([System.IO.File]::ReadAllBytes($info.FullName)))
}

#endregion

#region image target

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
    if (($entry.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) {
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
    <# .SYNOPSIS ServerFacts (src/facts.ts) read from a server image folder. #>
    param([string]$Path)
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
        $exsetup = ConvertTo-ExmitFileVersionFact -Object (@($objects) | Select-Object -First 1) -Source 'exsetup.xml' -DefaultFileName 'ExSetup.exe'
    }
    $services = $null
    # Only the top-level objects are services; copies nested under DependentServices are snapshots.
    $objects = Read-ExmitImageExport -Root $root -Name 'services.xml' -Missing $missing -MaxDepth 1
    if ($null -ne $objects) { $services = ConvertTo-ExmitServiceFacts -Objects $objects -Source 'services.xml' }
    $cachtokn = $null
    $objects = Read-ExmitImageExport -Root $root -Name 'cachtokn.xml' -Missing $missing -MaxDepth 2
    if ($null -ne $objects) {
        $cachtokn = ConvertTo-ExmitFileVersionFact -Object (@($objects) | Select-Object -First 1) -Source 'cachtokn.xml' -DefaultFileName 'cachtokn.dll'
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
        $applicationHost = [ordered]@{
            path = $appHostWindowsPath
            text = (Read-ExmitTextFile -Path $appHostFile -DisplayName 'applicationHost.config')
        }
    }
    $computerName = $null
    if ($null -ne $environment -and $environment.Contains('COMPUTERNAME')) { $computerName = [string]$environment['COMPUTERNAME'] }

    return (New-ExmitFacts -Kind image -Path $root -ComputerName $computerName -Registry $registry -ExSetup $exsetup `
            -Services $services -CachTokn $cachtokn -Os $os -Environment $environment -AppPools $appPools `
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
    <# .SYNOPSIS readFiles for an image: each Windows path's text from IMAGE/fs, or null when absent. #>
    param([string]$Path, [object[]]$Paths)
    $root = Resolve-ExmitImageRoot $Path
    $files = New-Object System.Collections.Generic.List[object]
    foreach ($windowsPath in $Paths) {
        $windowsPath = [string]$windowsPath
        $resolved = Resolve-ExmitImagePath -ImageRoot $root -WindowsPath $windowsPath
        $text = $null
        if ($null -ne $resolved) { $text = Read-ExmitTextFile -Path $resolved -DisplayName $windowsPath }
        $files.Add([ordered]@{ path = $windowsPath; text = $text })
    }
    return [ordered]@{ files = [object[]]$files.ToArray() }
}

#endregion

#region live target: thin wrappers around Windows APIs (mocked in Pester)

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
    <# .SYNOPSIS Get-Service (all services). #>
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

function Find-ExmitWebConfigFiles {
    <# .SYNOPSIS The web.config files at and below a folder (bounded). #>
    param([string]$Directory, [int]$Limit = 2000)
    if (-not (Test-Path -LiteralPath $Directory -PathType Container)) { return , @() }
    return , @(Get-ChildItem -LiteralPath $Directory -Filter 'web.config' -Recurse -File -Force -ErrorAction SilentlyContinue |
            Select-Object -First $Limit | ForEach-Object { $_.FullName })
}

function Get-ExmitFileBytes {
    <# .SYNOPSIS A file's bytes; $null when it does not exist; refused over MaxBytes. #>
    param([string]$Path, [long]$MaxBytes = $script:ExmitLimits.FileBytes)
    $info = New-Object System.IO.FileInfo $Path
    if (-not $info.Exists) { return $null }
    if ($info.Length -gt $MaxBytes) {
        throw (New-ExmitError -Kind environment -Message ('{0}: larger than the limit of {1} bytes' -f $Path, $MaxBytes))
    }
    return , [System.IO.File]::ReadAllBytes($Path)
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

#endregion

#region live target

function Invoke-ExmitLiveSource {
    <# .SYNOPSIS Runs a wrapper; a failure becomes an environment error naming the source. #>
    param([string]$Name, [scriptblock]$Script)
    try {
        $value = & $Script
    } catch {
        if (Test-ExmitError $_.Exception) { throw }
        throw (New-ExmitError -Kind environment -File $Name -Message ('{0}: cannot be read on this server: {1}' -f $Name, $_.Exception.Message))
    }
    if ($null -eq $value) { return $null }
    return , $value
}

function Get-ExmitInstallPath {
    <# .SYNOPSIS Exchange's install folder from ExchangeInstallPath, else the Setup key's MsiInstallPath. #>
    param($Environment, $Registry)
    if ($null -ne $Environment -and $Environment.Contains('ExchangeInstallPath') -and $Environment['ExchangeInstallPath']) {
        return ([string]$Environment['ExchangeInstallPath']).TrimEnd('\')
    }
    foreach ($key in @($Registry)) {
        if ($null -ne $key -and $key.name -eq 'Setup' -and $key.values.Contains('MsiInstallPath') -and $key.values['MsiInstallPath']) {
            return ([string]$key.values['MsiInstallPath']).TrimEnd('\')
        }
    }
    return $null
}

function Get-ExmitLocalFacts {
    <# .SYNOPSIS ServerFacts read from this server, normalised as the image reader does. #>
    $missing = New-Object System.Collections.Generic.List[string]

    $environment = $null
    $objects = Invoke-ExmitLiveSource 'environment.xml' { Get-ExmitEnvironment }
    if ($null -eq $objects) { $missing.Add('environment.xml') } else {
        $environment = ConvertTo-ExmitEnvironmentFact -Objects @($objects) -Source 'environment.xml' -Kind environment
    }
    $registry = $null
    $objects = Invoke-ExmitLiveSource 'registry.xml' { Get-ExmitRegistryKeys }
    if ($null -ne $objects) {
        $registry = ConvertTo-ExmitRegistryFacts -Objects @($objects) -Source 'registry.xml' -Kind environment
    }
    $windowsDirectory = Get-ExmitWindowsDirectory $environment

    $exsetup = $null
    $installPath = Get-ExmitInstallPath -Environment $environment -Registry $registry
    if ($installPath) {
        $exsetupPath = $installPath + '\bin\ExSetup.exe'
        $object = Invoke-ExmitLiveSource 'exsetup.xml' { Get-ExmitFileVersion -Path $exsetupPath }
        if ($null -ne $object) {
            $exsetup = ConvertTo-ExmitFileVersionFact -Object (@($object) | Select-Object -First 1) -Source 'exsetup.xml' -DefaultFileName $exsetupPath -Kind environment
        }
    }
    if ($null -eq $exsetup) { $missing.Add('exsetup.xml') }

    $services = $null
    $objects = Invoke-ExmitLiveSource 'services.xml' { Get-ExmitServices }
    if ($null -eq $objects) { $missing.Add('services.xml') } else {
        $services = ConvertTo-ExmitServiceFacts -Objects @($objects) -Source 'services.xml' -Kind environment
    }
    $cachtokn = $null
    $cachToknPath = $windowsDirectory + '\System32\inetsrv\cachtokn.dll'
    $object = Invoke-ExmitLiveSource 'cachtokn.xml' { Get-ExmitFileVersion -Path $cachToknPath }
    if ($null -eq $object) { $missing.Add('cachtokn.xml') } else {
        $cachtokn = ConvertTo-ExmitFileVersionFact -Object (@($object) | Select-Object -First 1) -Source 'cachtokn.xml' -DefaultFileName $cachToknPath -Kind environment
    }
    $os = $null
    $objects = Invoke-ExmitLiveSource 'os.xml' { Get-ExmitOperatingSystem }
    if ($null -eq $objects) { $missing.Add('os.xml') } else {
        $os = ConvertTo-ExmitOsFact -Objects @($objects) -Source 'os.xml' -Kind environment
    }
    $appPools = $null
    $objects = Invoke-ExmitLiveSource 'apppools.xml' { Get-ExmitAppPools }
    if ($null -eq $objects) { $missing.Add('apppools.xml') } else {
        $appPools = ConvertTo-ExmitAppPoolFacts -Objects @($objects) -Source 'apppools.xml' -Kind environment
    }
    $applicationHost = $null
    $appHostPath = Get-ExmitApplicationHostPath $windowsDirectory
    $bytes = Invoke-ExmitLiveSource 'applicationHost.config' { Get-ExmitFileBytes -Path $appHostPath }
    if ($null -eq $bytes) { $missing.Add('applicationHost.config') } else {
        $applicationHost = [ordered]@{ path = $appHostPath; text = (ConvertFrom-ExmitTextBytes -Bytes $bytes) }
    }
    $computerName = $null
    if ($null -ne $environment -and $environment.Contains('COMPUTERNAME')) { $computerName = [string]$environment['COMPUTERNAME'] }
    if (-not $computerName) { $computerName = [System.Environment]::MachineName }

    return (New-ExmitFacts -Kind local -Path $null -ComputerName $computerName -Registry $registry -ExSetup $exsetup `
            -Services $services -CachTokn $cachtokn -Os $os -Environment $environment -AppPools $appPools `
            -ApplicationHost $applicationHost -Missing $missing.ToArray())
}

function Read-ExmitLocalFiles {
    <# .SYNOPSIS readFiles on this server: each Windows path's text (BOM removed), or null when absent. #>
    param([object[]]$Paths)
    $files = New-Object System.Collections.Generic.List[object]
    foreach ($windowsPath in $Paths) {
        $windowsPath = [string]$windowsPath
        $segments = Split-ExmitWindowsPath $windowsPath
        $normalised = $segments[0] + ':\' + (($segments | Select-Object -Skip 1) -join '\')
        $bytes = Invoke-ExmitLiveSource $windowsPath { Get-ExmitFileBytes -Path $normalised }
        $text = $null
        if ($null -ne $bytes) { $text = ConvertFrom-ExmitTextBytes -Bytes $bytes }
        $files.Add([ordered]@{ path = $windowsPath; text = $text })
    }
    return [ordered]@{ files = [object[]]$files.ToArray() }
}

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

    $environmentObjects = Invoke-ExmitLiveSource 'environment.xml' { Get-ExmitEnvironment }
    $environment = $null
    if ($null -ne $environmentObjects) {
        Export-ExmitCliXml -InputObject @($environmentObjects) -Path (Join-Path $root 'environment.xml')
        $written.Add('environment.xml')
        $environment = ConvertTo-ExmitEnvironmentFact -Objects @($environmentObjects) -Source 'environment.xml' -Kind environment
    }
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
        $versionInfo = Invoke-ExmitLiveSource 'exsetup.xml' { Get-ExmitFileVersion -Path $exsetupPath }
        if ($null -ne $versionInfo) {
            Export-ExmitCliXml -InputObject @($versionInfo) -Path (Join-Path $root 'exsetup.xml')
            $written.Add('exsetup.xml')
        }
    }
    $services = Invoke-ExmitLiveSource 'services.xml' { Get-ExmitServices }
    if ($null -ne $services) {
        Export-ExmitCliXml -InputObject @($services) -Path (Join-Path $root 'services.xml')
        $written.Add('services.xml')
    }
    $cachToknPath = $windowsDirectory + '\System32\inetsrv\cachtokn.dll'
    $versionInfo = Invoke-ExmitLiveSource 'cachtokn.xml' { Get-ExmitFileVersion -Path $cachToknPath }
    if ($null -ne $versionInfo) {
        Export-ExmitCliXml -InputObject @($versionInfo) -Path (Join-Path $root 'cachtokn.xml')
        $written.Add('cachtokn.xml')
    }
    $os = Invoke-ExmitLiveSource 'os.xml' { Get-ExmitOperatingSystem }
    if ($null -ne $os) {
        Export-ExmitCliXml -InputObject @($os) -Path (Join-Path $root 'os.xml')
        $written.Add('os.xml')
    }
    $pools = Invoke-ExmitLiveSource 'apppools.xml' { Get-ExmitAppPools }
    if ($null -ne $pools) {
        $selected = @($pools | Select-Object Name, State, autoStart, startMode)
        Export-ExmitCliXml -InputObject $selected -Path (Join-Path $root 'apppools.xml')
        $written.Add('apppools.xml')
    }

    $copied = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
    $appHostPath = Get-ExmitApplicationHostPath $windowsDirectory
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

#endregion

#region state folder, keys and proxy on Windows (thin wrappers mocked in Pester; judged in TypeScript)

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

#endregion

#region protocol

function Get-ExmitPreflight {
    <# .SYNOPSIS What the TypeScript side checks before live work: edition, bitness, elevation, language mode, policy. #>
    $platform = 'Unix'
    if (Test-ExmitWindows) { $platform = 'Windows' }
    $edition = 'Desktop'
    if ($PSVersionTable.ContainsKey('PSEdition')) { $edition = [string]$PSVersionTable.PSEdition }
    $policy = $null
    try {
        $policy = [string](Get-ExecutionPolicy)
    } catch {
        Write-Verbose ('execution policy unreadable: {0}' -f $_.Exception.Message)
    }
    return [ordered]@{
        psVersion       = $PSVersionTable.PSVersion.ToString()
        edition         = $edition
        platform        = $platform
        is64BitProcess  = [System.Environment]::Is64BitProcess
        elevated        = (Test-ExmitElevated)
        languageMode    = [string]$ExecutionContext.SessionState.LanguageMode
        executionPolicy = $policy
    }
}

function Get-ExmitTarget {
    <# .SYNOPSIS The request's target as {kind, path}; input error when malformed. Defaults to local. #>
    param($Request)
    $target = Get-ExmitField $Request 'target'
    if ($null -eq $target) { return @{ kind = 'local'; path = $null } }
    $kind = Get-ExmitField $target 'kind'
    if ($kind -ceq 'local') { return @{ kind = 'local'; path = $null } }
    if ($kind -ceq 'image') {
        $path = Get-ExmitField $target 'path'
        if (-not ($path -is [string]) -or $path.Length -eq 0) {
            throw (New-ExmitError -Kind input -Message 'target.path must be the image folder for an image target')
        }
        return @{ kind = 'image'; path = $path }
    }
    throw (New-ExmitError -Kind input -Message ('unknown target kind: {0}' -f $kind))
}

function Invoke-ExmitRequest {
    <#
    .SYNOPSIS Runs one protocol request and returns its result object; throws (New-ExmitError) on failure.
    .DESCRIPTION The dispatcher that the stdin loop calls, and that Invoke-Command can call per phase.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)]$Request)
    $op = Get-ExmitField $Request 'op'
    if (-not ($op -is [string]) -or $op.Length -eq 0) {
        throw (New-ExmitError -Kind input -Message 'the request has no "op"')
    }
    switch -CaseSensitive ($op) {
        'preflight' {
            return (Get-ExmitPreflight)
        }
        'gather' {
            $target = Get-ExmitTarget $Request
            if ($target.kind -eq 'image') { return (Get-ExmitImageFacts -Path $target.path) }
            return (Get-ExmitLocalFacts)
        }
        'readFiles' {
            $target = Get-ExmitTarget $Request
            $paths = Get-ExmitField $Request 'paths'
            if ($null -eq $paths) { throw (New-ExmitError -Kind input -Message 'readFiles needs "paths": an array of Windows paths') }
            $paths = @($paths)
            foreach ($item in $paths) {
                if (-not ($item -is [string])) { throw (New-ExmitError -Kind input -Message 'readFiles: every path must be a string') }
            }
            if ($target.kind -eq 'image') { return (Read-ExmitImageFiles -Path $target.path -Paths $paths) }
            return (Read-ExmitLocalFiles -Paths $paths)
        }
        'collect' {
            $target = Get-ExmitTarget $Request
            if ($target.kind -ne 'local') { throw (New-ExmitError -Kind input -Message 'collect reads this server: its target must be local') }
            $out = Get-ExmitField $Request 'out'
            if (-not ($out -is [string])) { throw (New-ExmitError -Kind input -Message 'collect needs "out": a folder path') }
            return (Invoke-ExmitCollect -Out $out)
        }
        'whoami' {
            if (-not (Test-ExmitWindows)) { throw (New-ExmitError -Kind input -Message 'whoami: Windows only') }
            return (Invoke-ExmitLiveSource -Name 'the current Windows identity' -Script { Get-ExmitIdentity })
        }
        'security' {
            if (-not (Test-ExmitWindows)) { throw (New-ExmitError -Kind input -Message 'security: Windows only') }
            $paths = Get-ExmitField $Request 'paths'
            if ($null -eq $paths) { throw (New-ExmitError -Kind input -Message 'security needs "paths": an array of paths') }
            $paths = @($paths)
            foreach ($item in $paths) {
                if (-not ($item -is [string]) -or $item.Length -eq 0) { throw (New-ExmitError -Kind input -Message 'security: every path must be a non-empty string') }
            }
            return (Get-ExmitPathSecurity -Paths ([string[]]$paths))
        }
        'createSecure' {
            if (-not (Test-ExmitWindows)) { throw (New-ExmitError -Kind input -Message 'createSecure: Windows only') }
            $path = Get-ExmitField $Request 'path'
            $kind = Get-ExmitField $Request 'kind'
            $sddl = Get-ExmitField $Request 'sddl'
            $data = Get-ExmitField $Request 'data'
            if (-not ($path -is [string]) -or $path.Length -eq 0) { throw (New-ExmitError -Kind input -Message 'createSecure needs "path"') }
            if ($kind -cne 'folder' -and $kind -cne 'file') { throw (New-ExmitError -Kind input -Message 'createSecure: "kind" must be folder or file') }
            if (-not ($sddl -is [string])) { throw (New-ExmitError -Kind input -Message 'createSecure needs "sddl"') }
            $bytes = [byte[]]@()
            if ($data -is [string]) { $bytes = [System.Convert]::FromBase64String($data) }
            return (Invoke-ExmitCreateSecure -Path $path -Kind $kind -Sddl $sddl -Bytes $bytes)
        }
        'winHttpSettings' {
            if (-not (Test-ExmitWindows)) { return [ordered]@{ value = $null } }
            $bytes = Invoke-ExmitLiveSource -Name 'the WinHTTP proxy setting (WinHttpSettings)' -Script { Get-ExmitWinHttpSettings }
            if ($null -eq $bytes) { return [ordered]@{ value = $null } }
            return [ordered]@{ value = [System.Convert]::ToBase64String([byte[]]$bytes) }
        }
        'exit' {
            return [ordered]@{}
        }
        default {
            throw (New-ExmitError -Kind input -Message ('unknown op: {0}' -f $op))
        }
    }
}

function ConvertTo-ExmitJsonLine {
    <# .SYNOPSIS One compressed JSON line. #>
    param($InputObject)
    return (ConvertTo-Json -InputObject $InputObject -Depth 12 -Compress)
}

function Invoke-ExmitLine {
    <# .SYNOPSIS Answers one request line: returns @{ Json = the response line; Exit = whether to stop }. #>
    param([string]$Line)
    $id = $null
    $isExit = $false
    try {
        $text = $Line.TrimStart([char]0xFEFF)
        try {
            $request = ConvertFrom-Json -InputObject $text
        } catch {
            throw (New-ExmitError -Kind input -Message ('the request line is not valid JSON: {0}' -f $_.Exception.Message))
        }
        if ($null -eq $request -or -not ($request -is [System.Management.Automation.PSCustomObject])) {
            throw (New-ExmitError -Kind input -Message 'the request line is not a JSON object')
        }
        $id = Get-ExmitField $request 'id'
        $isExit = ((Get-ExmitField $request 'op') -ceq 'exit')
        $result = Invoke-ExmitRequest -Request $request
        $response = [ordered]@{ id = $id; ok = $true; result = $result }
    } catch {
        $response = [ordered]@{ id = $id; ok = $false; error = (ConvertTo-ExmitErrorObject $_) }
    }
    $json = $null
    try {
        $json = ConvertTo-ExmitJsonLine $response
    } catch {
        $failure = [ordered]@{ id = $id; ok = $false; error = [ordered]@{ kind = 'internal'; message = ('the response could not be serialised: ' + $_.Exception.Message); file = $null } }
        $json = ConvertTo-ExmitJsonLine $failure
    }
    return @{ Json = $json; Exit = $isExit }
}

function Start-ExmitEngine {
    <# .SYNOPSIS The stdin/stdout loop: one response line per request line, until exit or end of input. #>
    $utf8 = New-Object System.Text.UTF8Encoding $false
    try {
        [Console]::InputEncoding = $utf8
        [Console]::OutputEncoding = $utf8
    } catch {
        [Console]::Error.WriteLine('exmit-engine: console encoding not set: ' + $_.Exception.Message)
    }
    $WarningPreference = 'SilentlyContinue'
    $InformationPreference = 'SilentlyContinue'
    $reader = New-Object System.IO.StreamReader ([Console]::OpenStandardInput()), $utf8, $true
    $writer = New-Object System.IO.StreamWriter ([Console]::OpenStandardOutput()), $utf8
    $writer.AutoFlush = $true
    $writer.NewLine = "`n"
    # Stray host output (a module's Write-Host, say) goes to stderr: stdout carries responses only.
    [Console]::SetOut([Console]::Error)
    while ($true) {
        $line = $reader.ReadLine()
        if ($null -eq $line) { break }
        if ($line.Trim().Length -eq 0) { continue }
        $answer = Invoke-ExmitLine -Line $line
        $writer.WriteLine($answer.Json)
        if ($answer.Exit) { break }
    }
    $writer.Flush()
}

#endregion

if (-not $NoRun) {
    try {
        Start-ExmitEngine
    } catch {
        [Console]::Error.WriteLine('exmit-engine: ' + $_.Exception.Message)
        exit 1
    }
    exit 0
}
