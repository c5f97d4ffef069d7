# The CliXml reader: data only (no DTD, no type rehydration), whole documents or a streamed subset of services.

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

function Get-ExmitCliXmlText {
    <# .SYNOPSIS A CliXml export's text (UTF-16LE/BE or UTF-8, with or without BOM); image errors naming FileName for a missing, oversize or undecodable file. #>
    param([string]$Path, [string]$FileName, [long]$MaxBytes)
    $info = New-Object System.IO.FileInfo $Path
    $bytes = Read-ExmitFileBytes -Path $info.FullName -MaxBytes $MaxBytes -DisplayName $FileName -Kind image
    if ($null -eq $bytes) {
        throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not found' -f $FileName))
    }
    try {
        return (ConvertFrom-ExmitTextBytes -Bytes $bytes -Strict)
    } catch {
        throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not readable as UTF-16 or UTF-8 text' -f $FileName))
    }
}

function New-ExmitCliXmlReader {
    <# .SYNOPSIS An XmlReader over CliXml text that refuses DTDs and external resources and bounds the document's size. #>
    param([string]$Text, [switch]$IgnoreWhitespace)
    $settings = New-Object System.Xml.XmlReaderSettings
    $settings.DtdProcessing = [System.Xml.DtdProcessing]::Prohibit
    $settings.XmlResolver = $null
    $settings.MaxCharactersInDocument = $script:ExmitLimits.CliXmlChars
    $settings.MaxCharactersFromEntities = 1024
    $settings.IgnoreComments = $true
    $settings.IgnoreProcessingInstructions = $true
    $settings.IgnoreWhitespace = [bool]$IgnoreWhitespace
    return [System.Xml.XmlReader]::Create((New-Object System.IO.StringReader $Text), $settings)
}

function New-ExmitXmlDocument {
    <# .SYNOPSIS An empty XmlDocument that resolves nothing and keeps whitespace (CliXml strings are data). #>
    $document = New-Object System.Xml.XmlDocument
    $document.XmlResolver = $null
    $document.PreserveWhitespace = $true
    return , $document
}

function ConvertFrom-ExmitCliXmlDocument {
    <# .SYNOPSIS The top-level values of a loaded CliXml document; an image error naming FileName when its root is not Objs. #>
    param([System.Xml.XmlDocument]$Document, [string]$FileName, [int]$MaxDepth)
    $root = $Document.DocumentElement
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
    foreach ($obj in $Document.GetElementsByTagName('Obj', $script:ExmitPsNamespace)) {
        $refId = $obj.GetAttribute('RefId')
        if ($refId -and -not $context.Objects.ContainsKey($refId)) { $context.Objects[$refId] = $obj }
    }
    # TN elements may be referenced (TNRef) from objects converted out of document order (Ref).
    foreach ($tn in $Document.GetElementsByTagName('TN', $script:ExmitPsNamespace)) {
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
        $text = Get-ExmitCliXmlText -Path $Path -FileName $FileName -MaxBytes $MaxBytes
        $xmlReader = New-ExmitCliXmlReader -Text $text
        $document = New-ExmitXmlDocument
        try {
            $document.Load($xmlReader)
        } catch {
            $reason = $_.Exception.Message
            if ($_.Exception.InnerException) { $reason = $_.Exception.InnerException.Message }
            # A DTD is refused on purpose: say so in exmit's words (.NET's message advises enabling DTD processing).
            if ($text -match '<!DOCTYPE') {
                throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not well-formed XML: it has a DTD (<!DOCTYPE>), which exmit refuses and no PowerShell export has' -f $FileName))
            }
            throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not well-formed XML: {1}' -f $FileName, $reason))
        } finally {
            $xmlReader.Close()
        }
        return , (ConvertFrom-ExmitCliXmlDocument -Document $document -FileName $FileName -MaxDepth $MaxDepth)
    } catch {
        if (Test-ExmitError $_.Exception) { throw }
        throw (New-ExmitError -Kind image -File $FileName -Message ('{0}: not a valid CliXml export: {1}' -f $FileName, $_.Exception.Message))
    }
}

function Get-ExmitCliXmlEntryNames {
    <#
    .SYNOPSIS The names of the top-level <Obj> the reader is on: the text of its direct <S N="..."> children
    of Props and MS whose N is one of Properties. Leaves the reader after the entry's end tag.
    #>
    param([System.Xml.XmlReader]$Reader, $Properties)
    $names = New-Object System.Collections.Generic.List[string]
    $depth = $Reader.Depth
    if ($Reader.IsEmptyElement) {
        $null = $Reader.Read()
        return , $names.ToArray()
    }
    $element = [System.Xml.XmlNodeType]::Element
    $null = $Reader.Read()
    while ($Reader.Depth -gt $depth) {
        $name = $Reader.LocalName
        if ($Reader.NodeType -eq $element -and ($name -ceq 'Props' -or $name -ceq 'MS') -and -not $Reader.IsEmptyElement) {
            $null = $Reader.Read()
            while ($Reader.Depth -gt $depth + 1) {
                if ($Reader.NodeType -eq $element -and $Reader.LocalName -ceq 'S' -and $Properties.Contains([string]$Reader.GetAttribute('N'))) {
                    $names.Add((ConvertFrom-ExmitCliXmlEscape $Reader.ReadElementContentAsString()))
                } else {
                    $Reader.Skip()
                }
            }
            $null = $Reader.Read()
        } else {
            $Reader.Skip()
        }
    }
    $null = $Reader.Read()
    return , $names.ToArray()
}

function Read-ExmitCliXmlSubset {
    <#
    .SYNOPSIS Streams CliXml text and returns the top-level values whose names (Get-ExmitCliXmlEntryNames)
    meet Names; $null when the text cannot be judged entry by entry (the caller then reads it whole).
    #>
    param([string]$Text, [string]$FileName, [string[]]$Names, [string[]]$Properties, [int]$MaxDepth)
    $wanted = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
    foreach ($name in $Names) { if ($name) { $null = $wanted.Add($name) } }
    $propertySet = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::Ordinal)
    foreach ($property in $Properties) { $null = $propertySet.Add($property) }
    $element = [System.Xml.XmlNodeType]::Element

    # Pass 1: which top-level entries are wanted, peeking at their own names and skipping the rest.
    $indexes = New-Object 'System.Collections.Generic.HashSet[int]'
    $reader = New-ExmitCliXmlReader -Text $Text -IgnoreWhitespace
    try {
        $null = $reader.MoveToContent()
        if ($reader.NodeType -ne $element -or $reader.LocalName -cne 'Objs' -or $reader.NamespaceURI -cne $script:ExmitPsNamespace) { return $null }
        if (-not $reader.IsEmptyElement) {
            $null = $reader.Read()
            $index = 0
            while ($reader.Depth -gt 0 -and -not $reader.EOF) {
                if ($reader.NodeType -ne $element) { $null = $reader.Read(); continue }
                if ($reader.LocalName -cne 'Obj' -or $reader.NamespaceURI -cne $script:ExmitPsNamespace) { return $null }
                $entryNames = Get-ExmitCliXmlEntryNames -Reader $reader -Properties $propertySet
                if ($entryNames.Count -eq 0) { return $null }
                foreach ($entryName in $entryNames) {
                    if ($wanted.Contains($entryName)) { $null = $indexes.Add($index); break }
                }
                $index++
            }
        }
        # Well-formedness of the rest of the document, as a whole read would check it.
        while ($reader.Read()) { }
    } finally {
        $reader.Close()
    }

    # Pass 2: materialise the wanted entries only.
    $document = New-ExmitXmlDocument
    $root = $document.AppendChild($document.CreateElement('Objs', $script:ExmitPsNamespace))
    if ($indexes.Count -gt 0) {
        $reader = New-ExmitCliXmlReader -Text $Text
        try {
            $null = $reader.MoveToContent()
            $null = $reader.Read()
            $index = 0
            while ($reader.Depth -gt 0 -and -not $reader.EOF) {
                if ($reader.NodeType -ne $element) { $null = $reader.Read(); continue }
                if ($indexes.Contains($index)) {
                    $null = $root.AppendChild($document.ReadNode($reader))
                } else {
                    $reader.Skip()
                }
                $index++
            }
        } finally {
            $reader.Close()
        }
    }
    # A reference out of the wanted entries can only be resolved by the whole document.
    $defined = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::Ordinal)
    foreach ($obj in $document.GetElementsByTagName('Obj', $script:ExmitPsNamespace)) { $null = $defined.Add($obj.GetAttribute('RefId')) }
    foreach ($ref in $document.GetElementsByTagName('Ref', $script:ExmitPsNamespace)) {
        if (-not $defined.Contains($ref.GetAttribute('RefId'))) { return $null }
    }
    return , (ConvertFrom-ExmitCliXmlDocument -Document $document -FileName $FileName -MaxDepth $MaxDepth)
}

function Read-ExmitCliXmlEntries {
    <#
    .SYNOPSIS The top-level values of a CliXml export whose name is one of Names (case-insensitive), as
    Read-ExmitCliXmlFile would give them, without converting the others.
    .DESCRIPTION An entry's name is the text of a direct <S N="..."> property (Props or MS) named in
    NameProperties; copies nested in other entries (DependentServices) are not entries. The export is
    streamed with an XmlReader under the same limits; entries not wanted are skipped unparsed. A file
    that cannot be judged entry by entry (a top-level Ref, an entry without a name, a reference out of
    the wanted entries, any error) is read whole, so the result and the errors are Read-ExmitCliXmlFile's.
    The caller still selects by its own notion of name: this may return a few more entries.
    #>
    param(
        [Parameter(Mandatory = $true)][string]$Path,
        [Parameter(Mandatory = $true)][string]$FileName,
        [Parameter(Mandatory = $true)][AllowEmptyCollection()][string[]]$Names,
        [string[]]$NameProperties = @('ServiceName', 'Name'),
        [int]$MaxDepth = 4,
        [long]$MaxBytes = $script:ExmitLimits.CliXmlBytes
    )
    $values = $null
    try {
        $text = Get-ExmitCliXmlText -Path $Path -FileName $FileName -MaxBytes $MaxBytes
        $values = Read-ExmitCliXmlSubset -Text $text -FileName $FileName -Names $Names -Properties $NameProperties -MaxDepth $MaxDepth
    } catch {
        Write-Verbose ('{0}: read whole: {1}' -f $FileName, $_.Exception.Message)
        $values = $null
    }
    if ($null -ne $values) { return , $values }
    return , (Read-ExmitCliXmlFile -Path $Path -FileName $FileName -MaxDepth $MaxDepth -MaxBytes $MaxBytes)
}
