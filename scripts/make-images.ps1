<#
.SYNOPSIS
    Builds exmit's server images (examples/ and test/fixtures/images/) from real captures.

.DESCRIPTION
    Reads files captured on real Exchange servers (microsoft/CSS-Exchange test data, MIT, commit
    f88378b1e7a252e413cb2e579e88411393737c11) from -Source and writes the server images that the
    bundled example and the tests use, in the layout of docs/product.md "Server images".

    - CliXml exports are either produced by Export-Clixml from objects that carry the properties
      the real ones have (registry, os, environment, apppools), or derived from the real captures
      (exsetup, cachtokn, services) by editing their XML and renumbering RefIds as Export-Clixml
      would; then written as Windows PowerShell 5.1 writes them (UTF-16LE with BOM, CRLF), or as
      UTF-8 with BOM for some images, or UTF-8 without BOM for the e19-utf8 image.
    - applicationHost.config and web.config files are the real captures, copied byte for byte or
      with a small, documented edit (a rule inserted, a version folder renamed).

    The output is deterministic: running the script twice gives identical bytes. It runs on
    PowerShell 7 and Windows PowerShell 5.1. The folders it writes are deleted first.

.PARAMETER Source
    Folder holding the captures (e15/, e16/, e19/, LICENSE). Default: ../shared/fixtures/css-exchange
    beside the repository.

.PARAMETER Root
    The repository root. Default: the parent of this script's folder.
#>
[CmdletBinding()]
param(
    [string]$Source = '',
    [string]$Root = ''
)

Set-StrictMode -Version 2
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

if (-not $Root) { $Root = Split-Path -Parent $PSScriptRoot }
$Root = [System.IO.Path]::GetFullPath($Root)
if (-not $Source) { $Source = Join-Path (Split-Path -Parent $Root) (Join-Path 'shared' (Join-Path 'fixtures' 'css-exchange')) }
if (-not [System.IO.Path]::IsPathRooted($Source)) { $Source = Join-Path (Get-Location).Path $Source }
$Source = [System.IO.Path]::GetFullPath($Source)
if (-not (Test-Path -LiteralPath (Join-Path $Source 'LICENSE'))) { throw "No captures at '$Source' (expected LICENSE, e15/, e16/, e19/)." }

$CssCommit = 'f88378b1e7a252e413cb2e579e88411393737c11'
$PsNs = 'http://schemas.microsoft.com/powershell/2004/04'
$InstallPath = 'C:\Program Files\Microsoft\Exchange Server\V15\'
$Utf8NoBom = New-Object System.Text.UTF8Encoding($false)

# ---------------------------------------------------------------------------------------------
# Files and encodings
# ---------------------------------------------------------------------------------------------

function Get-SourcePath([string]$Relative) {
    $p = $Source
    foreach ($part in ($Relative -split '/')) { $p = Join-Path $p $part }
    if (-not (Test-Path -LiteralPath $p)) { throw "Missing capture: $p" }
    return $p
}

function Read-SourceBytes([string]$Relative) {
    return [System.IO.File]::ReadAllBytes((Get-SourcePath $Relative))
}

function Read-SourceText([string]$Relative) {
    # The captures are UTF-8 (with or without BOM) or ASCII.
    $bytes = Read-SourceBytes $Relative
    $offset = 0
    if ($bytes.Length -ge 3 -and $bytes[0] -eq 0xEF -and $bytes[1] -eq 0xBB -and $bytes[2] -eq 0xBF) { $offset = 3 }
    return $Utf8NoBom.GetString($bytes, $offset, $bytes.Length - $offset)
}

function Get-OutPath([string]$ImageDir, [string]$Relative) {
    $p = $ImageDir
    foreach ($part in ($Relative -split '/')) { $p = Join-Path $p $part }
    $dir = Split-Path -Parent $p
    if (-not (Test-Path -LiteralPath $dir)) { New-Item -ItemType Directory -Path $dir -Force | Out-Null }
    return $p
}

function Write-Bytes([string]$ImageDir, [string]$Relative, [byte[]]$Bytes) {
    [System.IO.File]::WriteAllBytes((Get-OutPath $ImageDir $Relative), $Bytes)
}

function ConvertTo-EncodedBytes([string]$Text, [string]$Encoding) {
    switch ($Encoding) {
        'utf16' { $enc = New-Object System.Text.UnicodeEncoding($false, $true); $bom = $true }
        'utf8bom' { $enc = $Utf8NoBom; $bom = $true }
        'utf8' { $enc = $Utf8NoBom; $bom = $false }
        default { throw "Unknown encoding '$Encoding'" }
    }
    $body = $enc.GetBytes($Text)
    if (-not $bom) { return , $body }
    if ($Encoding -eq 'utf16') { $pre = [byte[]](0xFF, 0xFE) } else { $pre = [byte[]](0xEF, 0xBB, 0xBF) }
    $all = New-Object byte[] ($pre.Length + $body.Length)
    [System.Array]::Copy($pre, 0, $all, 0, $pre.Length)
    [System.Array]::Copy($body, 0, $all, $pre.Length, $body.Length)
    return , $all
}

function Write-Text([string]$ImageDir, [string]$Relative, [string]$Text, [string]$Encoding) {
    Write-Bytes $ImageDir $Relative (ConvertTo-EncodedBytes $Text $Encoding)
}

function ConvertTo-Crlf([string]$Text) {
    return ($Text -replace "`r`n", "`n") -replace "`n", "`r`n"
}

# ---------------------------------------------------------------------------------------------
# CliXml: from objects (Export-Clixml) and from captures (XML edit + RefId renumbering)
# ---------------------------------------------------------------------------------------------

function ConvertTo-CliXmlText([object[]]$Objects) {
    # Export-Clixml itself, to a temporary file; CRLF as on Windows.
    $tmp = [System.IO.Path]::Combine([System.IO.Path]::GetTempPath(), 'exmit-make-images-' + [System.Guid]::NewGuid().ToString('N') + '.xml')
    try {
        $Objects | Export-Clixml -LiteralPath $tmp -Depth 2 -Encoding UTF8
        $text = [System.IO.File]::ReadAllText($tmp, [System.Text.Encoding]::UTF8)
    }
    finally {
        if (Test-Path -LiteralPath $tmp) { Remove-Item -LiteralPath $tmp -Force }
    }
    if ($text.Length -gt 0 -and $text[0] -eq [char]0xFEFF) { $text = $text.Substring(1) }
    # Windows PowerShell 5.1 writes a DictionaryEntry's ToString as its type name (7 writes "[key, value]").
    $text = [regex]::Replace($text, '(<T>System\.Collections\.DictionaryEntry</T>(?:\s*<T>[^<]*</T>)*\s*</TN>\s*)<ToString>\[[^<]*\]</ToString>', '$1<ToString>System.Collections.DictionaryEntry</ToString>')
    $text = [regex]::Replace($text, '(<TNRef RefId="(\d+)" />\s*)<ToString>\[[^<]*\]</ToString>', {
            param($m) $m.Groups[1].Value + '<ToString>System.Collections.DictionaryEntry</ToString>' })
    return (ConvertTo-Crlf $text.TrimEnd())
}

function Read-CaptureXml([string]$Relative) {
    $doc = New-Object System.Xml.XmlDocument
    $doc.PreserveWhitespace = $true
    $doc.XmlResolver = $null
    $doc.LoadXml((Read-SourceText $Relative))
    # Drop indentation (whitespace between elements); keep whitespace that is a value.
    $ws = @($doc.SelectNodes('//*[*]/text()[normalize-space(.)=""]'))
    foreach ($n in $ws) { [void]$n.ParentNode.RemoveChild($n) }
    return $doc
}

$CaptureCache = @{}
function Get-CaptureXml([string]$Relative) {
    # Parsed once; callers import nodes from it and never change it.
    if (-not $CaptureCache.ContainsKey($Relative)) { $CaptureCache[$Relative] = Read-CaptureXml $Relative }
    return $CaptureCache[$Relative]
}

function New-NsManager([System.Xml.XmlDocument]$Doc) {
    $ns = New-Object System.Xml.XmlNamespaceManager($Doc.NameTable)
    $ns.AddNamespace('p', $PsNs)
    return , $ns
}

function ConvertFrom-CliXmlDoc([System.Xml.XmlDocument]$Doc) {
    $settings = New-Object System.Xml.XmlWriterSettings
    $settings.Indent = $true
    $settings.IndentChars = '  '
    $settings.NewLineChars = "`r`n"
    $settings.NewLineHandling = [System.Xml.NewLineHandling]::Replace
    $settings.OmitXmlDeclaration = $true
    $sw = New-Object System.IO.StringWriter([System.Globalization.CultureInfo]::InvariantCulture)
    $w = [System.Xml.XmlWriter]::Create($sw, $settings)
    $Doc.DocumentElement.WriteTo($w)
    $w.Flush()
    $w.Close()
    return $sw.ToString()
}

function Update-CliXmlRefIds([System.Xml.XmlDocument]$Doc, [System.Xml.XmlDocument]$SourceDoc) {
    # Renumber TN and Obj RefIds in document order, as Export-Clixml numbers them. A TNRef whose
    # definition was in a dropped object becomes a full TN; a repeated TN definition becomes a TNRef.
    $srcNs = New-NsManager $SourceDoc
    $tnDefs = @{}
    foreach ($tn in $SourceDoc.SelectNodes('//p:TN[@RefId]', $srcNs)) { $tnDefs[$tn.GetAttribute('RefId')] = $tn }
    $tnMap = @{}
    $objMap = @{}
    $script:nextTn = 0
    $script:nextObj = 0
    $ns = New-NsManager $Doc
    $nodes = @($Doc.SelectNodes('//p:TN | //p:TNRef | //p:Obj | //p:Ref', $ns))
    foreach ($n in $nodes) {
        $old = $n.GetAttribute('RefId')
        switch ($n.LocalName) {
            'TN' {
                if ($tnMap.ContainsKey($old)) {
                    $ref = $Doc.CreateElement('TNRef', $PsNs)
                    $ref.SetAttribute('RefId', [string]$tnMap[$old])
                    [void]$n.ParentNode.ReplaceChild($ref, $n)
                }
                else {
                    $tnMap[$old] = $script:nextTn; $script:nextTn++
                    $n.SetAttribute('RefId', [string]$tnMap[$old])
                }
            }
            'TNRef' {
                if ($tnMap.ContainsKey($old)) { $n.SetAttribute('RefId', [string]$tnMap[$old]) }
                else {
                    if (-not $tnDefs.ContainsKey($old)) { throw "TNRef $old has no definition" }
                    $def = $Doc.ImportNode($tnDefs[$old], $true)
                    $tnMap[$old] = $script:nextTn; $script:nextTn++
                    $def.SetAttribute('RefId', [string]$tnMap[$old])
                    [void]$n.ParentNode.ReplaceChild($def, $n)
                }
            }
            'Obj' {
                if ($n.HasAttribute('RefId')) {
                    $objMap[$old] = $script:nextObj; $script:nextObj++
                    $n.SetAttribute('RefId', [string]$objMap[$old])
                }
            }
            'Ref' {
                if (-not $objMap.ContainsKey($old)) { throw "Ref $old points to an object that is not kept" }
                $n.SetAttribute('RefId', [string]$objMap[$old])
            }
        }
    }
}

# --- FileVersionInfo (ExSetup.exe, cachtokn.dll) ----------------------------------------------

function Set-PropText($Obj, $Ns, [string]$Kind, [string]$Name, [string]$Value) {
    $n = $Obj.SelectSingleNode("p:Props/p:$Kind[@N='$Name'] | p:MS/p:$Kind[@N='$Name']", $Ns)
    if ($null -eq $n) { throw "Property $Name not found" }
    $n.InnerText = $Value
}

function New-FileVersionText([string]$Capture, [int[]]$Parts, [string]$FileVersionString, [string]$ProductVersionString, [string]$ToStringVersion) {
    $doc = Read-CaptureXml $Capture
    $ns = New-NsManager $doc
    $obj = $doc.SelectSingleNode('/p:Objs/p:Obj', $ns)
    $oldFile = $obj.SelectSingleNode("p:Props/p:S[@N='FileVersion']", $ns).InnerText
    $oldProduct = $obj.SelectSingleNode("p:Props/p:S[@N='ProductVersion']", $ns).InnerText
    Set-PropText $obj $ns 'I32' 'FileMajorPart' $Parts[0]
    Set-PropText $obj $ns 'I32' 'FileMinorPart' $Parts[1]
    Set-PropText $obj $ns 'I32' 'FileBuildPart' $Parts[2]
    Set-PropText $obj $ns 'I32' 'FilePrivatePart' $Parts[3]
    Set-PropText $obj $ns 'I32' 'ProductMajorPart' $Parts[0]
    Set-PropText $obj $ns 'I32' 'ProductMinorPart' $Parts[1]
    Set-PropText $obj $ns 'I32' 'ProductBuildPart' $Parts[2]
    Set-PropText $obj $ns 'I32' 'ProductPrivatePart' $Parts[3]
    Set-PropText $obj $ns 'S' 'FileVersion' $FileVersionString
    Set-PropText $obj $ns 'S' 'ProductVersion' $ProductVersionString
    $raw = ($Parts -join '.')
    Set-PropText $obj $ns 'Version' 'FileVersionRaw' $raw
    Set-PropText $obj $ns 'Version' 'ProductVersionRaw' $raw
    $ts = $obj.SelectSingleNode('p:ToString', $ns)
    $tsFile = $FileVersionString; $tsProduct = $ProductVersionString
    if ($ToStringVersion) { $tsFile = $ToStringVersion; $tsProduct = $ToStringVersion }
    $text = $ts.InnerText
    $text = $text.Replace('FileVersion:      ' + $oldFile + '_x000D_', 'FileVersion:      ' + $tsFile + '_x000D_')
    $text = $text.Replace('ProductVersion:   ' + $oldProduct + '_x000D_', 'ProductVersion:   ' + $tsProduct + '_x000D_')
    if ($text -notmatch [regex]::Escape($tsFile)) { throw "ToString of $Capture not rewritten" }
    $ts.InnerText = $text
    return (ConvertFrom-CliXmlDoc $doc)
}

function Format-ExchangeFileVersion([int[]]$Parts) {
    return ('{0:00}.{1:00}.{2:0000}.{3:000}' -f $Parts[0], $Parts[1], $Parts[2], $Parts[3])
}

function Get-Parts([string]$Build) { return [int[]]($Build -split '\.') }

function New-ExSetupText($Image) {
    $parts = Get-Parts $Image.Build
    if ($parts[1] -le 1) { $capture = 'e16/ExSetup.xml' } else { $capture = 'e19/ExSetup.xml' }
    $v = Format-ExchangeFileVersion $parts
    $tsv = $null
    if ($Image.Contains('ExSetupToString')) { $tsv = Format-ExchangeFileVersion (Get-Parts $Image.ExSetupToString) }
    return (New-FileVersionText $capture $parts $v $v $tsv)
}

$CachTokn = @{
    # name               capture                                       version              branch tag in FileVersion
    '2012R2'         = @('e19/GetVersionInformationCachTokn.xml', '8.5.9600.16384', 'winblue_rtm.130821-1623')
    '2012R2-patched' = @('e19/GetVersionInformationCachToknPatched.xml', '8.5.9600.21613', 'winblue_rtm.130821-1623')
    '2016'           = @('e19/GetVersionInformationCachTokn.xml', '10.0.14393.0', 'rs1_release.160715-1616')
    '2016-patched'   = @('e19/GetVersionInformationCachToknPatched.xml', '10.0.14393.6343', 'rs1_release.160715-1616')
    '2019'           = @('e19/GetVersionInformationCachTokn.xml', $null, $null)
    '2019-patched'   = @('e19/GetVersionInformationCachToknPatched.xml', $null, $null)
    '2025'           = @('e19/GetVersionInformationCachTokn.xml', '10.0.26100.1', 'WinBuild.160101.0800')
}

function New-CachToknText([string]$Kind) {
    $c = $CachTokn[$Kind]
    if ($null -eq $c[1]) {
        # The real capture as it is, re-serialised.
        return (ConvertFrom-CliXmlDoc (Read-CaptureXml $c[0]))
    }
    $parts = Get-Parts $c[1]
    return (New-FileVersionText $c[0] $parts ($c[1] + ' (' + $c[2] + ')') $c[1] $null)
}

# --- Services ---------------------------------------------------------------------------------

# Windows services kept from the real capture (a reduced subset keeps the images small).
$WindowsServices = @('AJRouter', 'ALG', 'AppHostSvc', 'EventLog', 'IISADMIN', 'W32Time', 'W3SVC', 'WAS', 'WinRM', 'WSearch')
$IisServices = @('AppHostSvc', 'IISADMIN', 'W3SVC', 'WAS')
$EdgeServices = @('MSExchangeAntispamUpdate', 'MSExchangeDiagnostics', 'MSExchangeHM', 'MSExchangeHMRecovery', 'MSExchangeServiceHost', 'MSExchangeTransport', 'MSExchangeTransportLogSearch')

function Test-ExchangeServiceName([string]$Name) {
    return ($Name -like 'MSExchange*' -or $Name -eq 'MSComplianceAudit' -or $Name -eq 'HostControllerService' -or $Name -eq 'SearchExchangeTracing')
}

function New-ServicesText($Image) {
    # Base capture: the 2016 one (which has the UM services) for 2013 and 2016, the 2019 one otherwise.
    if ($Image.Product -eq '2013' -or $Image.Product -eq '2016') { $capture = 'e16/GetService.xml' } else { $capture = 'e19/GetService.xml' }
    $src = Get-CaptureXml $capture
    $srcNs = New-NsManager $src
    $doc = New-Object System.Xml.XmlDocument
    $doc.AppendChild($doc.ImportNode($src.DocumentElement, $false)) | Out-Null

    $allExchange = @($src.SelectNodes('/p:Objs/p:Obj', $srcNs) | ForEach-Object { $_.SelectSingleNode('p:ToString', $srcNs).InnerText } | Where-Object { Test-ExchangeServiceName $_ })
    # Exchange services that this product or role does not have at all.
    $absent = @()
    switch ($Image.Role) {
        'Edge' { $absent = @($allExchange | Where-Object { $EdgeServices -notcontains $_ }) }
        'Mgmt' { $absent = $allExchange }
        default {
            if ($Image.Product -eq '2013') { $absent = @('MSExchangeHMRecovery', 'MSExchangeMitigation', 'MSExchangeNotificationsBroker', 'MSComplianceAudit') }
        }
    }
    # Services a build predates (EEMS, MSExchangeMitigation, came with 2016 CU22 and 2019 CU11).
    if ($Image.Contains('AbsentServices')) { $absent = @($absent) + @($Image.AbsentServices | Where-Object { $absent -notcontains $_ }) }
    $keepWindows = $WindowsServices
    if ($Image.Role -eq 'Edge' -or $Image.Role -eq 'Mgmt') { $keepWindows = @($WindowsServices | Where-Object { $IisServices -notcontains $_ }) }

    foreach ($o in $src.SelectNodes('/p:Objs/p:Obj', $srcNs)) {
        $name = $o.SelectSingleNode('p:ToString', $srcNs).InnerText
        $keep = ($keepWindows -contains $name) -or ((Test-ExchangeServiceName $name) -and ($absent -notcontains $name))
        if ($keep) { $doc.DocumentElement.AppendChild($doc.ImportNode($o, $true)) | Out-Null }
    }
    $ns = New-NsManager $doc
    # Snapshots nested in the kept services: drop the services this server does not have.
    foreach ($name in $absent) {
        foreach ($s in @($doc.SelectNodes("//p:LST/p:S[.='$name']", $ns))) { [void]$s.ParentNode.RemoveChild($s) }
        foreach ($s in @($doc.SelectNodes("//p:LST/p:Obj[p:ToString='$name']", $ns))) { [void]$s.ParentNode.RemoveChild($s) }
    }
    foreach ($name in $absent) {
        if ($doc.SelectSingleNode("/p:Objs/p:Obj[p:ToString='$name']", $ns)) { throw "$name still present" }
    }
    Update-CliXmlRefIds $doc $src
    return (ConvertFrom-CliXmlDoc $doc)
}

# --- Registry (Get-ChildItem HKLM:\SOFTWARE\Microsoft\ExchangeServer\v15 | Get-ItemProperty) ----

function New-TypedObject([string[]]$TypeNames, [System.Collections.Specialized.OrderedDictionary]$Properties) {
    $o = New-Object PSObject
    foreach ($k in $Properties.Keys) { Add-Member -InputObject $o -MemberType NoteProperty -Name $k -Value $Properties[$k] }
    $o.PSObject.TypeNames.Clear()
    foreach ($t in $TypeNames) { $o.PSObject.TypeNames.Add($t) }
    return $o
}

function New-RegistryObjects($Image) {
    $parts = Get-Parts $Image.CuBuild
    $cu = $Image.CuBuild
    $provider = New-TypedObject @('System.Management.Automation.ProviderInfo', 'System.Object') ([ordered]@{
            ImplementingType = 'Microsoft.PowerShell.Commands.RegistryProvider'
            HelpFile         = 'System.Management.Automation.dll-Help.xml'
            Name             = 'Registry'
            PSSnapIn         = 'Microsoft.PowerShell.Core'
            ModuleName       = 'Microsoft.PowerShell.Core'
            Module           = $null
            Description      = ''
            Capabilities     = 'ShouldProcess, Transactions'
            Home             = ''
            Drives           = 'HKLM HKCU'
        })
    $drive = New-TypedObject @('System.Management.Automation.PSDriveInfo', 'System.Object') ([ordered]@{
            CurrentLocation = ''
            Name            = 'HKLM'
            Provider        = 'Microsoft.PowerShell.Core\Registry'
            Root            = 'HKEY_LOCAL_MACHINE'
            Description     = 'The software settings for the local computer'
            MaximumSize     = $null
            Credential      = 'System.Management.Automation.PSCredential'
            DisplayRoot     = $null
        })
    $parent = 'Microsoft.PowerShell.Core\Registry::HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\ExchangeServer\v15'
    $keys = New-Object System.Collections.ArrayList
    $roleKeys = switch ($Image.Role) {
        'Edge' { @('AdminTools', 'EdgeTransportRole') }
        'Mgmt' { @('AdminTools') }
        default {
            if ($Image.Product -eq '2013' -or $Image.Product -eq '2016') { @('AdminTools', 'CafeRole', 'ClientAccessRole', 'FrontendTransportRole', 'HubTransportRole', 'MailboxRole', 'UnifiedMessagingRole') }
            else { @('AdminTools', 'CafeRole', 'ClientAccessRole', 'FrontendTransportRole', 'HubTransportRole', 'MailboxRole') }
        }
    }
    $names = @($roleKeys)
    if (-not $Image.Contains('NoSetupKey')) { $names += 'Setup' }
    foreach ($k in $names) {
        $p = [ordered]@{}
        if ($k -eq 'Setup') {
            $p['MsiInstallPath'] = $InstallPath
            $p['MsiProductMajor'] = [int]$parts[0]
            $p['MsiProductMinor'] = [int]$parts[1]
            $p['MsiBuildMajor'] = [int]$parts[2]
            $p['MsiBuildMinor'] = [int]$parts[3]
        }
        else {
            $p['ConfiguredVersion'] = $cu
            $p['UnpackedVersion'] = $cu
        }
        $p['PSPath'] = $parent + '\' + $k
        $p['PSParentPath'] = $parent
        $p['PSChildName'] = $k
        $p['PSDrive'] = $drive
        $p['PSProvider'] = $provider
        [void]$keys.Add((New-TypedObject @('System.Management.Automation.PSCustomObject', 'System.Object') $p))
    }
    return , $keys.ToArray()
}

# --- os.xml, environment.xml, apppools.xml ----------------------------------------------------

$OsInfo = @{
    '2012R2' = @('Microsoft Windows Server 2012 R2 Standard', '6.3.9600', '9600')
    '2016'   = @('Microsoft Windows Server 2016 Standard', '10.0.14393', '14393')
    '2019'   = @('Microsoft Windows Server 2019 Datacenter', '10.0.17763', '17763')
    '2025'   = @('Microsoft Windows Server 2025 Standard', '10.0.26100', '26100')
}

function New-OsObject($Image) {
    $os = $OsInfo[$Image.Os]
    $cim = 'Microsoft.Management.Infrastructure.CimInstance'
    $types = @("$cim#root/cimv2/Win32_OperatingSystem", "$cim#root/cimv2/CIM_OperatingSystem", "$cim#root/cimv2/CIM_LogicalElement", "$cim#root/cimv2/CIM_ManagedSystemElement",
        "$cim#Win32_OperatingSystem", "$cim#CIM_OperatingSystem", "$cim#CIM_LogicalElement", "$cim#CIM_ManagedSystemElement", $cim, 'System.Object')
    return (New-TypedObject $types ([ordered]@{
                Caption                 = $os[0]
                Version                 = $os[1]
                BuildNumber             = $os[2]
                BuildType               = 'Multiprocessor Free'
                CSName                  = $Image.Computer
                OSArchitecture          = '64-bit'
                OSType                  = [uint16]18
                ProductType             = [uint32]3
                ServicePackMajorVersion = [uint16]0
                ServicePackMinorVersion = [uint16]0
                SystemDirectory         = 'C:\Windows\system32'
                SystemDrive             = 'C:'
                WindowsDirectory        = 'C:\Windows'
                PSComputerName          = $null
            }))
}

function New-EnvironmentObjects($Image) {
    $vars = [ordered]@{
        ALLUSERSPROFILE     = 'C:\ProgramData'
        COMPUTERNAME        = $Image.Computer
        ExchangeInstallPath = $InstallPath
        ProgramData         = 'C:\ProgramData'
        ProgramFiles        = 'C:\Program Files'
        SystemDrive         = 'C:'
        SystemRoot          = 'C:\Windows'
        windir              = 'C:\Windows'
    }
    $list = New-Object System.Collections.ArrayList
    foreach ($k in $vars.Keys) { [void]$list.Add((New-Object System.Collections.DictionaryEntry($k, $vars[$k]))) }
    return , $list.ToArray()
}

function New-AppPoolObjects([string]$AppHostText) {
    # Name, State, autoStart, startMode of every pool in the image's applicationHost.config; all running.
    $doc = New-Object System.Xml.XmlDocument
    $doc.XmlResolver = $null
    $doc.LoadXml($AppHostText)
    $list = New-Object System.Collections.ArrayList
    foreach ($add in $doc.SelectNodes('/configuration/system.applicationHost/applicationPools/add')) {
        $autoStart = $true
        if ($add.HasAttribute('autoStart')) { $autoStart = [System.Convert]::ToBoolean($add.GetAttribute('autoStart')) }
        $startMode = 'OnDemand'
        if ($add.HasAttribute('startMode')) { $startMode = $add.GetAttribute('startMode') }
        [void]$list.Add((New-TypedObject @('Selected.Microsoft.IIs.PowerShell.Framework.ConfigurationElement', 'System.Management.Automation.PSCustomObject', 'System.Object') ([ordered]@{
                        Name      = $add.GetAttribute('name')
                        State     = 'Started'
                        autoStart = $autoStart
                        startMode = $startMode
                    })))
    }
    return , $list.ToArray()
}

# ---------------------------------------------------------------------------------------------
# IIS files
# ---------------------------------------------------------------------------------------------

function Get-NewLine([string]$Text) { if ($Text.Contains("`r`n")) { return "`r`n" } else { return "`n" } }

function Get-AppHostText($Image) {
    switch ($Image.Product) {
        '2013' { return (Read-SourceText 'e15/applicationHost.config') }
        '2016' { return (Read-SourceText 'e16/applicationHost.config').Replace('15.1.2375.7', $Image.CuBuild) }
        default { return (Read-SourceText 'e19/applicationHost1.config').Replace('15.2.1118.7', $Image.CuBuild) }
    }
}

# The final ProxyNotShell rule as EOMT/EEMS write it, and its bypassed 2022 variant.
$RuleFinal = @(
    '<rule name="PowerShell - inbound" stopProcessing="true">',
    '    <match url=".*" />',
    '    <conditions>',
    '        <add input="{UrlDecode:{REQUEST_URI}}" pattern="(?=.*autodiscover)(?=.*powershell)" />',
    '    </conditions>',
    '    <action type="AbortRequest" />',
    '</rule>')
$Rule2022 = @(
    '<rule name="PowerShell - inbound" stopProcessing="true">',
    '    <match url=".*" />',
    '    <conditions>',
    '        <add input="{REQUEST_URI}" pattern=".*autodiscover\.json.*\@.*Powershell.*" />',
    '    </conditions>',
    '    <action type="AbortRequest" />',
    '</rule>')

function Format-RewriteBlock([string[]]$Rule, [string]$Indent, [string]$Step, [string]$NewLine) {
    $lines = @("$Indent<rewrite>", "$Indent$Step<rules>")
    foreach ($l in $Rule) { $lines += ($Indent + $Step + $Step + $l.Replace('    ', $Step)) }
    $lines += @("$Indent$Step</rules>", "$Indent</rewrite>")
    return (($lines -join $NewLine) + $NewLine)
}

function Add-OutdatedRule([string]$AppHost) {
    # Into <location path="Default Web Site"><system.webServer>, after urlCompression.
    $nl = Get-NewLine $AppHost
    $anchor = '    <location path="Default Web Site">' + $nl + '        <system.webServer>' + $nl
    $i = $AppHost.IndexOf($anchor)
    if ($i -lt 0) { throw 'Default Web Site location not found' }
    $close = $AppHost.IndexOf('        </system.webServer>' + $nl, $i)
    $block = Format-RewriteBlock $Rule2022 '            ' '    ' $nl
    return $AppHost.Insert($close, $block)
}

function Add-UrlRewrite([string]$AppHost) {
    # What the URL Rewrite 2.1 installer adds to an applicationHost.config without it, as in the
    # 2016 and 2019 captures: the rewrite sectionGroup, the global module, its trace area and the module.
    $nl = Get-NewLine $AppHost
    $edits = @(
        @(('            <section name="webSocket" overrideModeDefault="Deny" />' + $nl), $true, (@(
                    '            <sectionGroup name="rewrite">',
                    '                <section name="globalRules" overrideModeDefault="Deny" allowDefinition="AppHostOnly" />',
                    '                <section name="rules" overrideModeDefault="Allow" />',
                    '                <section name="outboundRules" overrideModeDefault="Allow" />',
                    '                <section name="providers" overrideModeDefault="Allow" />',
                    '                <section name="rewriteMaps" overrideModeDefault="Allow" />',
                    '                <section name="allowedServerVariables" overrideModeDefault="Deny" />',
                    '            </sectionGroup>') -join $nl)),
        @(('        </globalModules>' + $nl), $false, '            <add name="RewriteModule" image="%SystemRoot%\system32\inetsrv\rewrite.dll" />'),
        @(('                        <add name="WebSocket" value="16384" />' + $nl), $true, '                        <add name="Rewrite" value="1024" />'),
        @(('        </modules>' + $nl), $false, '                <add name="RewriteModule" />'))
    foreach ($e in $edits) {
        $anchor = $e[0]
        $i = $AppHost.IndexOf($anchor)
        if ($i -lt 0 -or $AppHost.IndexOf($anchor, $i + 1) -ge 0) { throw "URL Rewrite anchor not found exactly once: $($anchor.Trim())" }
        $at = $i
        if ($e[1]) { $at = $i + $anchor.Length }
        $AppHost = $AppHost.Insert($at, $e[2] + $nl)
    }
    return $AppHost
}

function ConvertTo-CrlfBytes([byte[]]$Bytes) {
    # The same file with CRLF newlines, its BOM (if any) kept.
    $bom = ($Bytes.Length -ge 3 -and $Bytes[0] -eq 0xEF -and $Bytes[1] -eq 0xBB -and $Bytes[2] -eq 0xBF)
    $offset = 0
    if ($bom) { $offset = 3 }
    $t = ConvertTo-Crlf ($Utf8NoBom.GetString($Bytes, $offset, $Bytes.Length - $offset))
    if ($bom) { return , (ConvertTo-EncodedBytes $t 'utf8bom') }
    return , (ConvertTo-EncodedBytes $t 'utf8')
}

function Get-WwwRootBytes($Image) {
    switch ($Image.WwwRoot) {
        'plain' { return , (Read-SourceBytes 'e19/DefaultWebSite_web.config') }
        'bad' { return , (Read-SourceBytes 'e19/DefaultWebSite_web1.config') }
        'eems' {
            # The real EEMS/EOMT web.config with its typo <system.web> fixed to </system.web>.
            $t = Read-SourceText 'e19/DefaultWebSite_web1.config'
            $nl = Get-NewLine $t
            $typo = '      </compilation>' + $nl + '    <system.web>' + $nl + '  </location>'
            if ($t.IndexOf($typo) -lt 0) { throw 'typo not found in DefaultWebSite_web1.config' }
            $t = $t.Replace($typo, '      </compilation>' + $nl + '    </system.web>' + $nl + '  </location>')
            return , (ConvertTo-EncodedBytes $t 'utf8bom')
        }
        'misplaced' {
            # The final rule inside <location inheritInChildApplications="false">: no effect at /Autodiscover.
            $t = Read-SourceText 'e19/DefaultWebSite_web.config'
            $nl = Get-NewLine $t
            $anchor = '      </modules>' + $nl + '    </system.webServer>'
            $i = $t.IndexOf($anchor)
            if ($i -lt 0) { throw 'modules not found in DefaultWebSite_web.config' }
            $at = $i + ('      </modules>' + $nl).Length
            $t = $t.Insert($at, (Format-RewriteBlock $RuleFinal '      ' '  ' $nl))
            return , (ConvertTo-EncodedBytes $t 'utf8bom')
        }
        default { throw "Unknown wwwroot variant $($Image.WwwRoot)" }
    }
}

function Get-FrontEndSource([string]$Product, [string]$Vdir) {
    # 2016 captures where they exist (used for 2013 too), the 2019 ones otherwise.
    $name = @{ owa = 'OWA'; ecp = 'ECP'; OAB = 'OAB'; Autodiscover = 'AutoD' }[$Vdir]
    if (($Product -eq '2016' -or $Product -eq '2013') -and ($name -eq 'OWA' -or $name -eq 'AutoD')) { return "e16/DefaultWebSite-${name}_web.config" }
    return "e19/DefaultWebSite-${name}_web.config"
}

# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------

$Attribution = "Files derived from real captures in microsoft/CSS-Exchange (MIT), commit $CssCommit (HealthChecker and Shared test data); see the LICENSE file beside the image folders. Generated by scripts/make-images.ps1."

function Get-AuditLines($Image) {
    $lines = @()
    foreach ($k in @($Image.Expect.Keys)) { $lines += ('| ' + $k + ' | ' + $Image.Expect[$k] + ' |') }
    return $lines
}

function Write-ImageReadme($Image, [string]$Dir, [string[]]$Files) {
    $nl = "`n"
    $t = '# ' + $Image.Name + $nl + $nl + $Image.Summary + $nl + $nl
    $t += '- product and build: ' + $Image.ProductName + ', ' + $Image.BuildText + $nl
    $t += '- roles: ' + $Image.RolesText + $nl
    $t += '- Windows: ' + $OsInfo[$Image.Os][0] + ' (' + $OsInfo[$Image.Os][1] + ')' + $nl
    $t += '- CliXml encoding: ' + @{ utf16 = 'UTF-16LE with BOM, CRLF (as Windows PowerShell 5.1 writes)'; utf8bom = 'UTF-8 with BOM, CRLF'; utf8 = 'UTF-8 without BOM, CRLF' }[$Image.Encoding] + $nl
    if ($Image.Contains('IisText')) { $t += '- IIS files: ' + $Image.IisText + $nl }
    $t += $nl + '## What an audit should report' + $nl + $nl
    if ($Image.Contains('Fatal')) { $t += $Image.Fatal + $nl }
    else {
        $t += '| mitigation | status |' + $nl + '| --- | --- |' + $nl
        $t += ((Get-AuditLines $Image) -join $nl) + $nl
        $exposed = @($Image.Expect.Values | Where-Object { $_ -match '^(needed|partial|outdated|patch-only)' }).Count -gt 0
        $support = 'current'
        if ($Image.Contains('Support')) { $support = $Image.Support }
        $t += $nl + 'Support state (`support.state`, from the build list): ' + $support + $nl
        if ($exposed) { $t += $nl + 'Exit code of `exmit audit --target image:DIR`: 3 (exposed).' + $nl }
        elseif ($support -ne 'current') { $t += $nl + 'Exit code of `exmit audit --target image:DIR`: 3 (exposed: the server''s CU or product gets no more updates, whatever the catalog says).' + $nl }
        else { $t += $nl + 'Exit code of `exmit audit --target image:DIR`: 0 (not exposed to anything in the catalog).' + $nl }
    }
    $t += $nl + '## Files' + $nl + $nl
    foreach ($f in $Files) { $t += '- `' + $f + '`' + $nl }
    if ($Image.Contains('Notes')) { $t += $nl + $Image.Notes + $nl }
    $t += $nl + '## Source' + $nl + $nl + $Attribution + $nl
    Write-Text $Dir 'README.md' $t 'utf8'
}

function Write-Image($Image) {
    $dir = Join-Path $Root ($Image.Dir -replace '/', [System.IO.Path]::DirectorySeparatorChar)
    if (-not (Test-Path -LiteralPath $dir)) { New-Item -ItemType Directory -Path $dir -Force | Out-Null }
    $enc = $Image.Encoding
    $files = New-Object System.Collections.ArrayList
    $omit = @()
    if ($Image.Contains('Omit')) { $omit = $Image.Omit }
    $paths = @{
        apphost = 'fs/C/Windows/System32/inetsrv/config/applicationHost.config'
        wwwroot = 'fs/C/inetpub/wwwroot/web.config'
        fe      = 'fs/C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy'
    }
    if ($Image.Contains('MixedCase')) {
        $paths.apphost = 'fs/c/windows/system32/INETSRV/Config/applicationHost.config'
        $paths.wwwroot = 'fs/c/InetPub/WWWROOT/Web.config'
        $paths.fe = 'fs/c/program files/microsoft/Exchange Server/v15/frontend/HTTPPROXY'
    }

    # registry.xml
    if ($omit -notcontains 'registry') {
        if ($Image.Contains('RegistryText')) { Write-Text $dir 'registry.xml' $Image.RegistryText 'utf16' }
        else {
            $reg = ConvertTo-CliXmlText (New-RegistryObjects $Image)
            if ($Image.Contains('HostileEntity')) {
                $dtd = @('<!DOCTYPE Objs [', '  <!ENTITY lol "lol">')
                $prev = 'lol'
                for ($i = 1; $i -le 9; $i++) { $dtd += ('  <!ENTITY lol' + $i + ' "' + ('&' + $prev + ';') * 10 + '">'); $prev = 'lol' + $i }
                $dtd += ']>'
                $reg = (($dtd -join "`r`n") + "`r`n" + $reg).Replace('<S N="MsiInstallPath">', '<S N="MsiInstallPath">&lol9;')
            }
            Write-Text $dir 'registry.xml' $reg $enc
        }
        [void]$files.Add('registry.xml')
    }
    if ($Image.Contains('ExSetupGarbage')) {
        # A well-formed CliXml export, but of a service, not of ExSetup.exe's FileVersionInfo.
        Write-Text $dir 'exsetup.xml' (ConvertFrom-CliXmlDoc (Read-CaptureXml 'e19/GetServiceMitigation.xml')) $enc
        [void]$files.Add('exsetup.xml')
    }
    elseif ($omit -notcontains 'exsetup') { Write-Text $dir 'exsetup.xml' (New-ExSetupText $Image) $enc; [void]$files.Add('exsetup.xml') }
    Write-Text $dir 'services.xml' (New-ServicesText $Image) $enc; [void]$files.Add('services.xml')
    Write-Text $dir 'os.xml' (ConvertTo-CliXmlText @(New-OsObject $Image)) $enc; [void]$files.Add('os.xml')
    Write-Text $dir 'environment.xml' (ConvertTo-CliXmlText (New-EnvironmentObjects $Image)) $enc; [void]$files.Add('environment.xml')

    if ($Image.Role -eq 'Mailbox') {
        Write-Text $dir 'cachtokn.xml' (New-CachToknText $Image.CachTokn) $enc; [void]$files.Add('cachtokn.xml')
        $appHost = Get-AppHostText $Image
        if ($Image.Contains('OutdatedRule')) { $appHost = Add-OutdatedRule $appHost }
        if ($Image.Contains('UrlRewrite')) { $appHost = Add-UrlRewrite $appHost }
        $crlf = ($Image.Contains('IisNewLine') -and $Image.IisNewLine -eq 'crlf')
        $appHostEnc = 'utf8'
        if ($Image.Contains('AppHostEncoding')) { $appHostEnc = $Image.AppHostEncoding }
        Write-Text $dir 'apppools.xml' (ConvertTo-CliXmlText (New-AppPoolObjects $appHost)) $enc; [void]$files.Add('apppools.xml')
        if ($Image.Contains('BadAppHost')) {
            Write-Bytes $dir $paths.apphost (Read-SourceBytes 'e19/BadApplicationHost.config'); [void]$files.Add($paths.apphost)
        }
        elseif ($omit -notcontains 'apphost') {
            # The captures are ASCII: written as they are (UTF-8 without BOM is byte-identical for ASCII).
            if ($crlf) { $appHost = ConvertTo-Crlf $appHost }
            Write-Text $dir $paths.apphost $appHost $appHostEnc; [void]$files.Add($paths.apphost)
        }
        $www = Get-WwwRootBytes $Image
        if ($crlf) { $www = ConvertTo-CrlfBytes $www }
        Write-Bytes $dir $paths.wwwroot $www; [void]$files.Add($paths.wwwroot)
        foreach ($v in @('owa', 'ecp', 'OAB', 'Autodiscover')) {
            $vdir = $v
            if ($Image.Contains('MixedCase')) { $vdir = @{ owa = 'OWA'; ecp = 'Ecp'; OAB = 'oab'; Autodiscover = 'autodiscover' }[$v] }
            $rel = $paths.fe + '/' + $vdir + '/web.config'
            $fe = Read-SourceBytes (Get-FrontEndSource $Image.Product $v)
            if ($crlf) { $fe = ConvertTo-CrlfBytes $fe }
            Write-Bytes $dir $rel $fe; [void]$files.Add($rel)
        }
    }
    if ($Image.Contains('ExtraFiles')) {
        foreach ($k in @($Image.ExtraFiles.Keys)) { Write-Text $dir $k $Image.ExtraFiles[$k] 'utf8'; [void]$files.Add($k) }
    }
    $sorted = [string[]]$files.ToArray()
    [System.Array]::Sort($sorted, [System.StringComparer]::Ordinal)
    Write-ImageReadme $Image $dir $sorted
    Write-Host ('wrote ' + $Image.Dir)
}

# Expected statuses, in the order of the catalog.
function New-Expect([string]$Cookie, [string]$Um, [string]$Ecp, [string]$Oab, [string]$Pns, [string]$Ssrf, [string]$Token, [string]$Csp) {
    $e = [ordered]@{}
    $e['proxylogon-cookie'] = $Cookie
    $e['proxylogon-um-services'] = $Um
    $e['proxylogon-ecp-apppool'] = $Ecp
    $e['proxylogon-oab-apppool'] = $Oab
    $e['proxynotshell-autodiscover'] = $Pns
    $e['owassrf'] = $Ssrf
    $e['tokencache-module'] = $Token
    $e['owa-csp-xss'] = $Csp
    return $e
}

$F = 'fixed'
$NA = 'not-applicable'
$UmFixed19 = 'fixed (2019 fixed from CU9; 2019 has no UM services)'
$CspNeeded = 'needed (CU12 never got the June 2026 fix: no update exists for this CU)'
$TokenNeeded = 'needed (cachtokn.dll 10.0.17763.0 is before the October 2023 Windows update; TokenCacheModule is in globalModules)'
$TokenFixed = 'fixed (cachtokn.dll 10.0.17763.4968)'

function New-E19Cu12Oct22Image([string]$Dir, [string]$Name) {
    return [ordered]@{
        Dir = $Dir; Name = $Name; Product = '2019'; Build = '15.2.1118.15'; CuBuild = '15.2.1118.7'; Role = 'Mailbox'; Os = '2019'
        CachTokn = '2019'; Encoding = 'utf16'; WwwRoot = 'plain'; Computer = 'EX19A'; Support = 'cu-behind'
        ProductName = 'Exchange Server 2019'; BuildText = 'Exchange 2019 CU12 Oct22SU, 15.2.1118.15 (registry: CU12 15.2.1118.7)'
        RolesText = 'Mailbox (MailboxRole, ClientAccessRole, CafeRole, FrontendTransportRole, HubTransportRole, AdminTools keys); EEMS (MSExchangeMitigation) present and running'
        Summary = 'Exchange 2019 CU12 with the October 2022 SU, on Windows Server 2019 before its October 2023 update, with no URL Rewrite rules anywhere.'
        Expect = (New-Expect $F $UmFixed19 $F $F 'needed' 'patch-only (vulnerable before Nov22SU 15.2.1118.20; no configuration mitigation)' $TokenNeeded $CspNeeded)
    }
}

$Images = New-Object System.Collections.ArrayList

# --- the bundled example --------------------------------------------------------------------------
$img = New-E19Cu12Oct22Image 'examples/e19-cu12-oct22su' 'e19-cu12-oct22su: the bundled example'
[void]$Images.Add($img)

$T = 'test/fixtures/images/'

# --- 2019 CU12 Nov22SU, EEMS rules in wwwroot ----------------------------------------------------
[void]$Images.Add([ordered]@{
        Dir = $T + 'e19-cu12-nov22su-eems'; Name = 'e19-cu12-nov22su-eems'; Product = '2019'; Build = '15.2.1118.20'; CuBuild = '15.2.1118.7'; Role = 'Mailbox'; Os = '2019'
        CachTokn = '2019-patched'; Encoding = 'utf16'; WwwRoot = 'eems'; Computer = 'EX19B'; ExSetupToString = '15.2.1118.15'; Support = 'cu-behind'
        ProductName = 'Exchange Server 2019'; BuildText = 'Exchange 2019 CU12 Nov22SU, 15.2.1118.20 (registry: CU12 15.2.1118.7)'
        RolesText = 'Mailbox; EEMS present and running'
        Summary = 'Exchange 2019 CU12 Nov22SU with the EEMS M1.1 and EOMT "PowerShell - inbound" rules in the Default Web Site root web.config, outside the inheritInChildApplications="false" location (so they reach /Autodiscover), and cachtokn.dll patched. exsetup.xml is the trap for readers that trust ToString: its ToString says 15.02.1118.015 (Oct22SU) while every typed field (FileVersion, File*Part, Product*Part, FileVersionRaw, ProductVersion) says 15.2.1118.20.'
        Expect = (New-Expect $F $UmFixed19 $F $F 'fixed, stillApplied: true (the EEMS/EOMT rules are still in place and can be removed)' 'fixed' $TokenFixed $CspNeeded)
    })

# --- 2019 CU12 Oct22SU with the EEMS rule ------------------------------------------------------
$img = New-E19Cu12Oct22Image ($T + 'e19-cu12-oct22su-eems-rule') 'e19-cu12-oct22su-eems-rule'
$img.WwwRoot = 'eems'; $img.Computer = 'EX19C'
$img.Summary = 'Exchange 2019 CU12 Oct22SU (vulnerable to ProxyNotShell) with the EEMS M1.1, RequestBlockingRule1 and EOMT "PowerShell - inbound" rules in the Default Web Site root web.config, outside the inheritInChildApplications="false" location (the real CSS-Exchange capture with its <system.web> typo fixed to </system.web>).'
$img.Expect['proxynotshell-autodiscover'] = 'mitigated (by the EEMS/EOMT rules; the Nov22SU 15.2.1118.20 fixes it)'
[void]$Images.Add($img)

# --- misplaced rule -----------------------------------------------------------------------------
$img = New-E19Cu12Oct22Image ($T + 'e19-cu12-oct22su-misplaced') 'e19-cu12-oct22su-misplaced'
$img.WwwRoot = 'misplaced'; $img.Computer = 'EX19D'
$img.Summary = 'Exchange 2019 CU12 Oct22SU with the final ProxyNotShell rule ("PowerShell - inbound", {UrlDecode:{REQUEST_URI}} (?=.*autodiscover)(?=.*powershell), AbortRequest) placed INSIDE the Default Web Site root web.config''s <location inheritInChildApplications="false">, so it does not take effect at /Autodiscover (an Autodiscover application).'
$img.Expect['proxynotshell-autodiscover'] = 'needed (the rule exists but does not reach /Autodiscover)'
[void]$Images.Add($img)

# --- outdated 2022 rule -------------------------------------------------------------------------
$img = New-E19Cu12Oct22Image ($T + 'e19-cu12-oct22su-outdated') 'e19-cu12-oct22su-outdated'
$img.OutdatedRule = $true; $img.Computer = 'EX19E'
$img.Summary = 'Exchange 2019 CU12 Oct22SU with the first, bypassable 2022 ProxyNotShell rule ("PowerShell - inbound", {REQUEST_URI} .*autodiscover\.json.*\@.*Powershell.*, AbortRequest) in applicationHost.config <location path="Default Web Site">.'
$img.Expect['proxynotshell-autodiscover'] = 'outdated (the published exploit is stopped, the encoded/bypass shapes are not)'
[void]$Images.Add($img)

# --- 2019 CU14 Jun26SU ------------------------------------------------------------------------
[void]$Images.Add([ordered]@{
        Dir = $T + 'e19-cu14-jun26su'; Name = 'e19-cu14-jun26su'; Product = '2019'; Build = '15.2.1544.41'; CuBuild = '15.2.1544.4'; Role = 'Mailbox'; Os = '2019'
        CachTokn = '2019-patched'; Encoding = 'utf16'; WwwRoot = 'plain'; Computer = 'EX19F'
        ProductName = 'Exchange Server 2019'; BuildText = 'Exchange 2019 CU14 Jun26SU, 15.2.1544.41 (registry: CU14 15.2.1544.4)'
        RolesText = 'Mailbox; EEMS present and running'
        Summary = 'Exchange 2019 CU14 with the June 2026 SU and Windows patched: fixed for everything in the catalog, no rules. applicationHost.config is the CU12 capture with its version folders renamed 15.2.1118.7 -> 15.2.1544.4.'
        Expect = (New-Expect $F $UmFixed19 $F $F $F $F $TokenFixed 'fixed (June 2026 SU; Microsoft keeps M2 until the July 2026 SU 15.2.1544.43: remove a rule only after July)')
    })

# --- 2019 CU14 registry only ----------------------------------------------------------------
[void]$Images.Add([ordered]@{
        Dir = $T + 'e19-cu14-registry-only'; Name = 'e19-cu14-registry-only'; Product = '2019'; Build = '15.2.1544.4'; CuBuild = '15.2.1544.4'; Role = 'Mailbox'; Os = '2019'
        CachTokn = '2019-patched'; Encoding = 'utf16'; WwwRoot = 'plain'; Computer = 'EX19G'; Omit = @('exsetup')
        ProductName = 'Exchange Server 2019'; BuildText = 'Exchange 2019 CU14, known only from the registry as 15.2.1544.4 (no exsetup.xml: SU level unknown)'
        RolesText = 'Mailbox; EEMS present and running'
        Summary = 'Exchange 2019 CU14 with no exsetup.xml: detect reports buildSource "registry", suLevelKnown false, and the CU (CU14) without the SU.'
        Expect = (New-Expect $F $UmFixed19 $F $F 'fixed (2019 fixed from CU13)' 'fixed (2019 fixed from CU13)' $TokenFixed 'needed (SU level unknown; CU14 is fixed only from 15.2.1544.41)')
    })

# --- 2016 -------------------------------------------------------------------------------------
[void]$Images.Add([ordered]@{
        Dir = $T + 'e16-cu23-jun26su'; Name = 'e16-cu23-jun26su'; Product = '2016'; Build = '15.1.2507.69'; CuBuild = '15.1.2507.6'; Role = 'Mailbox'; Os = '2016'
        CachTokn = '2016-patched'; Encoding = 'utf8bom'; WwwRoot = 'plain'; Computer = 'EX16A'
        ProductName = 'Exchange Server 2016'; BuildText = 'Exchange 2016 CU23 Jun26SU, 15.1.2507.69 (registry: CU23 15.1.2507.6)'
        RolesText = 'Mailbox (with UnifiedMessagingRole; MSExchangeUM and MSExchangeUMCR running); EEMS present and running'
        Summary = 'Exchange 2016 CU23 with the June 2026 SU on Windows Server 2016 with cachtokn.dll exactly at the October 2023 version (10.0.14393.6343). applicationHost.config is the 2016 CU22 capture with its version folders renamed 15.1.2375.7 -> 15.1.2507.6.'
        Expect = (New-Expect $F $F $F $F $F $F 'fixed (cachtokn.dll 10.0.14393.6343)' 'fixed (June 2026 SU; keep any M2 rule until the July 2026 SU 15.1.2507.71)')
    })
[void]$Images.Add([ordered]@{
        Dir = $T + 'e16-cu22-nov22su'; Name = 'e16-cu22-nov22su'; Product = '2016'; Build = '15.1.2375.37'; CuBuild = '15.1.2375.7'; Role = 'Mailbox'; Os = '2016'
        CachTokn = '2016'; Encoding = 'utf8bom'; WwwRoot = 'plain'; Computer = 'EX16B'; Support = 'cu-behind'
        ProductName = 'Exchange Server 2016'; BuildText = 'Exchange 2016 CU22 Nov22SU, 15.1.2375.37 (registry: CU22 15.1.2375.7)'
        RolesText = 'Mailbox (with UnifiedMessagingRole; MSExchangeUM and MSExchangeUMCR running); EEMS present and running'
        Summary = 'Exchange 2016 CU22 with the November 2022 SU on Windows Server 2016 before its October 2023 update.'
        Expect = (New-Expect 'fixed (2016 fixed from CU20)' 'fixed' 'fixed' 'fixed' 'fixed (Nov22SU)' 'fixed (Nov22SU)' 'needed (cachtokn.dll 10.0.14393.0)' 'needed (CU22 never got the June 2026 fix)')
    })

# --- 2013 -------------------------------------------------------------------------------------
[void]$Images.Add([ordered]@{
        Dir = $T + 'e15-cu23-mar23su'; Name = 'e15-cu23-mar23su'; Product = '2013'; Build = '15.0.1497.48'; CuBuild = '15.0.1497.2'; Role = 'Mailbox'; Os = '2012R2'
        CachTokn = '2012R2'; Encoding = 'utf8bom'; WwwRoot = 'plain'; Computer = 'EX15A'; Support = 'product-ended'
        ProductName = 'Exchange Server 2013'; BuildText = 'Exchange 2013 CU23 Mar23SU, 15.0.1497.48 (registry: CU23 15.0.1497.2)'
        RolesText = 'Mailbox and Client Access (MailboxRole, ClientAccessRole, CafeRole, FrontendTransportRole, HubTransportRole, UnifiedMessagingRole, AdminTools keys); MSExchangeUM and MSExchangeUMCR running; no EEMS (2013 has none)'
        Summary = 'Exchange 2013 CU23 with the March 2023 SU on Windows Server 2012 R2 before its October 2023 update. The real 2013 applicationHost.config has no URL Rewrite module. The web.config files are the 2016/2019 captures (no 2013 web.config was captured).'
        Expect = (New-Expect 'fixed (CU23 Mar21SU 15.0.1497.12)' 'fixed' 'fixed' 'fixed' 'fixed (CU23 Nov22SU 15.0.1497.44)' 'fixed' 'needed (cachtokn.dll 8.5.9600.16384 is before 8.5.9600.21613)' 'not-applicable (Microsoft did not evaluate the out-of-support 2013, which may be affected)')
        Notes = 'services.xml is the 2016 capture without the services 2013 does not have (MSExchangeHMRecovery, MSExchangeMitigation, MSExchangeNotificationsBroker, MSComplianceAudit), nested snapshots included.'
    })

[void]$Images.Add([ordered]@{
        Dir = $T + 'e15-cu23-mar23su-patched'; Name = 'e15-cu23-mar23su-patched'; Product = '2013'; Build = '15.0.1497.48'; CuBuild = '15.0.1497.2'; Role = 'Mailbox'; Os = '2012R2'
        CachTokn = '2012R2-patched'; Encoding = 'utf8bom'; WwwRoot = 'plain'; Computer = 'EX15B'; Support = 'product-ended'
        ProductName = 'Exchange Server 2013'; BuildText = 'Exchange 2013 CU23 Mar23SU, 15.0.1497.48 (registry: CU23 15.0.1497.2)'
        RolesText = 'Mailbox and Client Access (MailboxRole, ClientAccessRole, CafeRole, FrontendTransportRole, HubTransportRole, UnifiedMessagingRole, AdminTools keys); MSExchangeUM and MSExchangeUMCR running; no EEMS (2013 has none)'
        Summary = 'Exchange 2013 CU23 with its last security update (March 2023) on Windows Server 2012 R2 with cachtokn.dll at the October 2023 version (8.5.9600.21613): everything the catalog knows is fixed or not applicable, yet the server is exposed, because Exchange 2013 gets no more updates (support.state product-ended).'
        Expect = (New-Expect 'fixed (CU23 Mar21SU 15.0.1497.12)' 'fixed' 'fixed' 'fixed' 'fixed (CU23 Nov22SU 15.0.1497.44)' 'fixed' 'fixed (cachtokn.dll 8.5.9600.21613)' 'not-applicable (Microsoft did not evaluate the out-of-support 2013, which may be affected)')
        Notes = 'services.xml is the 2016 capture without the services 2013 does not have (MSExchangeHMRecovery, MSExchangeMitigation, MSExchangeNotificationsBroker, MSComplianceAudit), nested snapshots included.'
    })

# --- 2019 CU15 Aug26SU: current, fully patched ------------------------------------------------
[void]$Images.Add([ordered]@{
        Dir = $T + 'e19-cu15-aug26su'; Name = 'e19-cu15-aug26su'; Product = '2019'; Build = '15.2.1748.49'; CuBuild = '15.2.1748.10'; Role = 'Mailbox'; Os = '2019'
        CachTokn = '2019-patched'; Encoding = 'utf16'; WwwRoot = 'eems'; Computer = 'EX19H'; Support = 'current'
        ProductName = 'Exchange Server 2019'; BuildText = 'Exchange 2019 CU15 Aug26SU, 15.2.1748.49 (registry: CU15 15.2.1748.10)'
        RolesText = 'Mailbox; EEMS present and running'
        Summary = 'Exchange 2019 CU15 with the August 2026 SU (the newest update of 2019, which CU15 received) on a patched Windows Server 2019, with the EEMS/EOMT ProxyNotShell rules still in the Default Web Site root web.config: current, fully patched and mitigated. applicationHost.config is the CU12 capture with its version folders renamed 15.2.1118.7 -> 15.2.1748.10.'
        Expect = (New-Expect $F $UmFixed19 $F $F 'fixed, stillApplied: true (the EEMS/EOMT rules are still in place and can be removed)' $F $TokenFixed 'fixed (July 2026 SU and later: a rule may be removed)')
    })

# --- before the March 2021 SU (ProxyLogon), for apply and rollback ---------------------------------
$Feb21Summary = ' Every bundled mitigation that has a configuration change is needed here, so apply --needed and rollback --all exercise them all.'
[void]$Images.Add([ordered]@{
        Dir = $T + 'e19-cu8-feb21'; Name = 'e19-cu8-feb21'; Product = '2019'; Build = '15.2.792.3'; CuBuild = '15.2.792.3'; Role = 'Mailbox'; Os = '2019'
        CachTokn = '2019'; Encoding = 'utf16'; WwwRoot = 'plain'; Computer = 'EX19K'; Support = 'cu-behind'; AbsentServices = @('MSExchangeMitigation')
        IisNewLine = 'crlf'; AppHostEncoding = 'utf8bom'; IisText = 'CRLF; applicationHost.config UTF-8 with BOM, the web.config files UTF-8 with BOM (the captures with LF turned into CRLF)'
        ProductName = 'Exchange Server 2019'; BuildText = 'Exchange 2019 CU8, 15.2.792.3 (registry: CU8 15.2.792.3), before the March 2021 SU 15.2.792.10'
        RolesText = 'Mailbox (MailboxRole, ClientAccessRole, CafeRole, FrontendTransportRole, HubTransportRole, AdminTools keys); MSExchangeHM and MSExchangeHMRecovery running, Automatic; no EEMS (CU8 predates it)'
        Summary = ('Exchange 2019 CU8 without any SU on Windows Server 2019 before its October 2023 update, with URL Rewrite (as the 2019 capture has it) and no rules.' + $Feb21Summary + ' applicationHost.config is the CU12 capture with its version folders renamed 15.2.1118.7 -> 15.2.792.3.')
        Expect = (New-Expect 'needed (before the Mar21SU 15.2.792.10)' 'patch-only (2019 has no UM services to stop; fixed by the Mar21SU 15.2.792.10)' 'needed (MSExchangeECPAppPool started, autoStart true; MSExchangeHM and MSExchangeHMRecovery running, Automatic)' 'needed (MSExchangeOABAppPool started, autoStart true; MSExchangeHM and MSExchangeHMRecovery running, Automatic)' 'needed (CU8 never got the fix)' 'patch-only (CU8 never got the fix; no configuration mitigation)' 'needed (cachtokn.dll 10.0.17763.0 is before 10.0.17763.4968)' 'needed (CU8 never got the June 2026 fix)')
        Notes = 'services.xml is the 2019 capture without MSExchangeMitigation (EEMS), nested snapshots included.'
    })
[void]$Images.Add([ordered]@{
        Dir = $T + 'e16-cu19-feb21'; Name = 'e16-cu19-feb21'; Product = '2016'; Build = '15.1.2176.2'; CuBuild = '15.1.2176.2'; Role = 'Mailbox'; Os = '2016'
        CachTokn = '2016'; Encoding = 'utf16'; WwwRoot = 'plain'; Computer = 'EX16K'; Support = 'cu-behind'; AbsentServices = @('MSExchangeMitigation')
        IisText = 'LF as captured; applicationHost.config UTF-8 without BOM, the web.config files UTF-8 with BOM'
        ProductName = 'Exchange Server 2016'; BuildText = 'Exchange 2016 CU19, 15.1.2176.2 (registry: CU19 15.1.2176.2), before the March 2021 SU 15.1.2176.9'
        RolesText = 'Mailbox (with UnifiedMessagingRole; MSExchangeUM and MSExchangeUMCR running); MSExchangeHM and MSExchangeHMRecovery running, Automatic; no EEMS (CU19 predates it)'
        Summary = ('Exchange 2016 CU19 without any SU on Windows Server 2016 before its October 2023 update, with URL Rewrite (as the 2016 capture has it) and no rules.' + $Feb21Summary + ' applicationHost.config is the 2016 CU22 capture with its version folders renamed 15.1.2375.7 -> 15.1.2176.2.')
        Expect = (New-Expect 'needed (before the Mar21SU 15.1.2176.9)' 'needed (MSExchangeUM and MSExchangeUMCR running; MSExchangeHM and MSExchangeHMRecovery running, Automatic)' 'needed (MSExchangeECPAppPool started, autoStart true)' 'needed (MSExchangeOABAppPool started, autoStart true)' 'needed (CU19 never got the fix)' 'patch-only (CU19 never got the fix; no configuration mitigation)' 'needed (cachtokn.dll 10.0.14393.0 is before 10.0.14393.6343)' 'needed (CU19 never got the June 2026 fix)')
        Notes = 'services.xml is the 2016 capture without MSExchangeMitigation (EEMS), nested snapshots included.'
    })
$Feb21E15 = [ordered]@{
    Product = '2013'; Build = '15.0.1497.2'; CuBuild = '15.0.1497.2'; Role = 'Mailbox'; Os = '2012R2'
    CachTokn = '2012R2'; Encoding = 'utf8bom'; WwwRoot = 'plain'; Support = 'product-ended'
    IisNewLine = 'crlf'; IisText = 'CRLF; applicationHost.config UTF-8 without BOM, the web.config files UTF-8 with BOM (the captures with LF turned into CRLF)'
    ProductName = 'Exchange Server 2013'; BuildText = 'Exchange 2013 CU23, 15.0.1497.2 (registry: CU23 15.0.1497.2), before the March 2021 SU 15.0.1497.12'
    RolesText = 'Mailbox and Client Access (MailboxRole, ClientAccessRole, CafeRole, FrontendTransportRole, HubTransportRole, UnifiedMessagingRole, AdminTools keys); MSExchangeUM and MSExchangeUMCR running; no EEMS (2013 has none)'
    Expect = (New-Expect 'needed (before the Mar21SU 15.0.1497.12)' 'needed (MSExchangeUM and MSExchangeUMCR running; MSExchangeHM running, Automatic)' 'needed (MSExchangeECPAppPool started, autoStart true)' 'needed (MSExchangeOABAppPool started, autoStart true)' 'needed (before the Nov22SU 15.0.1497.44)' 'patch-only (before the Nov22SU 15.0.1497.44; no configuration mitigation)' 'needed (cachtokn.dll 8.5.9600.16384 is before 8.5.9600.21613)' 'not-applicable (Microsoft did not evaluate the out-of-support 2013, which may be affected)')
    Notes = 'services.xml is the 2016 capture without the services 2013 does not have (MSExchangeHMRecovery, MSExchangeMitigation, MSExchangeNotificationsBroker, MSComplianceAudit), nested snapshots included. The web.config files are the 2016/2019 captures (no 2013 web.config was captured).'
}
$img = [ordered]@{ Dir = $T + 'e15-cu23-feb21-rewrite'; Name = 'e15-cu23-feb21-rewrite'; Computer = 'EX15K'; UrlRewrite = $true }
foreach ($k in $Feb21E15.Keys) { $img[$k] = $Feb21E15[$k] }
$img.Summary = 'Exchange 2013 CU23 without any SU on Windows Server 2012 R2 before its October 2023 update, with IIS URL Rewrite 2.1 installed: the real 2013 applicationHost.config with what the URL Rewrite installer adds (the rewrite sectionGroup in configSections, RewriteModule in globalModules and in system.webServer/modules, the Rewrite trace area), copied from the 2016 capture.' + $Feb21Summary
[void]$Images.Add($img)
$img = [ordered]@{ Dir = $T + 'e15-cu23-feb21-norewrite'; Name = 'e15-cu23-feb21-norewrite'; Computer = 'EX15L' }
foreach ($k in $Feb21E15.Keys) { $img[$k] = $Feb21E15[$k] }
$img.Summary = 'The same server as e15-cu23-feb21-rewrite without IIS URL Rewrite, as the real 2013 applicationHost.config is (the audit is the same): apply must refuse before changing anything, naming the module and where to get it, since proxylogon-cookie and proxynotshell-autodiscover are URL Rewrite rules.'
[void]$Images.Add($img)

# --- Subscription Edition ---------------------------------------------------------------------
[void]$Images.Add([ordered]@{
        Dir = $T + 'se-rtm-jun26su'; Name = 'se-rtm-jun26su'; Product = 'SE'; Build = '15.2.2562.43'; CuBuild = '15.2.2562.17'; Role = 'Mailbox'; Os = '2025'
        CachTokn = '2025'; Encoding = 'utf8bom'; WwwRoot = 'plain'; Computer = 'EXSEA'
        ProductName = 'Exchange Server Subscription Edition'; BuildText = 'Exchange SE RTM Jun26SU, 15.2.2562.43 (registry: SE RTM 15.2.2562.17)'
        RolesText = 'Mailbox; EEMS present and running'
        Summary = 'Exchange Server Subscription Edition RTM with the June 2026 SU on Windows Server 2025. applicationHost.config is the 2019 CU12 capture with its version folders renamed 15.2.1118.7 -> 15.2.2562.17.'
        Expect = (New-Expect $F 'fixed (SE ships with the fix; no UM services)' $F $F $F $F 'not-applicable (Windows Server 2025 is not affected; cachtokn.dll 10.0.26100.1)' 'fixed (June 2026 SU; keep any M2 rule until the July 2026 SU 15.2.2562.45)')
    })

# --- Edge and management tools ----------------------------------------------------------------
[void]$Images.Add([ordered]@{
        Dir = $T + 'e19-edge'; Name = 'e19-edge'; Product = '2019'; Build = '15.2.1118.15'; CuBuild = '15.2.1118.7'; Role = 'Edge'; Os = '2019'
        Encoding = 'utf16'; Computer = 'EDGE19A'; Support = 'cu-behind'
        ProductName = 'Exchange Server 2019'; BuildText = 'Exchange 2019 CU12 Oct22SU, 15.2.1118.15 (registry: CU12 15.2.1118.7)'
        RolesText = 'Edge Transport (EdgeTransportRole and AdminTools keys); no IIS, no EEMS'
        Summary = 'An Edge Transport server: no IIS (no applicationHost.config, cachtokn.xml or apppools.xml), no EEMS. Its IIS mitigations do not apply even though the build is vulnerable.'
        Expect = (New-Expect $NA $NA $NA $NA 'not-applicable (Edge Transport)' 'not-applicable (Edge Transport)' 'not-applicable (no IIS)' 'not-applicable (Edge Transport)')
        Notes = 'services.xml keeps the Exchange services an Edge server runs (transport, health manager, anti-spam, diagnostics, service host) from the 2019 Mailbox capture, with the other Exchange services removed from the nested snapshots too.'
    })
[void]$Images.Add([ordered]@{
        Dir = $T + 'e19-mgmt-tools'; Name = 'e19-mgmt-tools'; Product = '2019'; Build = '15.2.1118.15'; CuBuild = '15.2.1118.7'; Role = 'Mgmt'; Os = '2019'
        Encoding = 'utf16'; Computer = 'ADMIN01'; Support = 'cu-behind'
        ProductName = 'Exchange Server 2019'; BuildText = 'Exchange 2019 CU12 Oct22SU management tools, 15.2.1118.15 (registry: CU12 15.2.1118.7)'
        RolesText = 'ManagementTools only (AdminTools key); no IIS, no Exchange services'
        Summary = 'A management-tools-only install: nothing to mitigate.'
        Expect = (New-Expect $NA $NA $NA $NA $NA $NA $NA $NA)
    })

# --- UTF-8 without BOM, mixed-case paths ------------------------------------------------------
$img = New-E19Cu12Oct22Image ($T + 'e19-utf8') 'e19-utf8'
$img.Encoding = 'utf8'; $img.MixedCase = $true
$img.Summary = 'The bundled example (Exchange 2019 CU12 Oct22SU) with every CliXml in UTF-8 without BOM and the fs/ paths in mixed case (fs/c/windows/system32/INETSRV/Config/applicationHost.config, fs/c/InetPub/WWWROOT/Web.config, .../HTTPPROXY/OWA/web.config, ...) to exercise case-insensitive path resolution.'
[void]$Images.Add($img)

# --- bad images: one defect each ------------------------------------------------------------
function New-BadImage([string]$Name, [string]$Fatal, [string]$Summary) {
    $i = New-E19Cu12Oct22Image ($T + 'bad/' + $Name) ('bad/' + $Name)
    $i.Fatal = $Fatal
    $i.Summary = $Summary + ' Everything else is the valid bundled example (Exchange 2019 CU12 Oct22SU, Mailbox).'
    return $i
}
$img = New-BadImage 'missing-registry' 'Fatal: exit 1 naming registry.xml (missing).' 'No registry.xml.'
$img.Omit = @('registry'); [void]$Images.Add($img)
$img = New-BadImage 'registry-not-xml' 'Fatal: exit 1 naming registry.xml (not well-formed: not an Export-Clixml file).' 'registry.xml is the text that `Get-ItemProperty ... > registry.xml` writes (UTF-16LE), not CliXml.'
$img.RegistryText = ("`r`n`r`nMsiInstallPath  : $InstallPath`r`nMsiProductMajor : 15`r`nMsiProductMinor : 2`r`nMsiBuildMajor   : 1118`r`nMsiBuildMinor   : 7`r`n" +
    "PSPath          : Microsoft.PowerShell.Core\Registry::HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\ExchangeServer\v15\Setup`r`n" +
    "PSParentPath    : Microsoft.PowerShell.Core\Registry::HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\ExchangeServer\v15`r`n" +
    "PSChildName     : Setup`r`nPSDrive         : HKLM`r`nPSProvider      : Microsoft.PowerShell.Core\Registry`r`n`r`n`r`n`r`n")
[void]$Images.Add($img)
$img = New-BadImage 'registry-no-setup-key' 'Fatal: exit 1 naming registry.xml (no Setup key).' 'registry.xml holds the role keys (AdminTools, CafeRole, ClientAccessRole, FrontendTransportRole, HubTransportRole, MailboxRole) but no Setup key.'
$img.NoSetupKey = $true; [void]$Images.Add($img)
$img = New-BadImage 'exsetup-garbage' 'Fatal: exit 1 naming exsetup.xml (present but not an ExSetup.exe FileVersionInfo export).' 'exsetup.xml is a well-formed CliXml export of the MSExchangeMitigation service (the real GetServiceMitigation.xml), not of ExSetup.exe''s VersionInfo.'
$img.ExSetupGarbage = $true; [void]$Images.Add($img)
$img = New-BadImage 'apphost-not-well-formed' 'Fatal: exit 1 naming applicationHost.config (not well-formed).' 'applicationHost.config is the real BadApplicationHost.config capture (a <sectionGroup> that is opened where it should be closed).'
$img.BadAppHost = $true; [void]$Images.Add($img)
$img = New-BadImage 'webconfig-not-well-formed' 'Fatal: exit 1 naming the Default Web Site root web.config (fs/C/inetpub/wwwroot/web.config: not well-formed).' 'fs/C/inetpub/wwwroot/web.config is the real DefaultWebSite_web1.config capture, EEMS/EOMT rules and all, with its <system.web> where </system.web> should be.'
$img.WwwRoot = 'bad'; [void]$Images.Add($img)
$img = New-BadImage 'hostile-entity' 'Fatal: exit 1 naming registry.xml (a DTD is refused; the entity is never expanded). The run must stay fast and small in memory.' 'registry.xml starts with a DOCTYPE that declares an entity expansion bomb (lol1..lol9, 10^9 copies) and uses &lol9; in the Setup key''s MsiInstallPath.'
$img.HostileEntity = $true; [void]$Images.Add($img)
$img = New-BadImage 'oversize' 'As committed: a valid image, same statuses as the bundled example. The test replaces services.xml at run time with one over 100 MB: then fatal, exit 1 naming services.xml (over the size limit), without reading it all into memory.' 'A services.xml over 100 MB is too big to commit: the test generates it at run time (see OVERSIZE.md).'
$img.ExtraFiles = @{ 'OVERSIZE.md' = "# oversize`n`nThe committed services.xml is a normal one. The test that uses this image copies the image to a temporary folder and writes there a services.xml over 100 MB (for example the real services export followed by padding whitespace inside the <Objs> element, or many repeated service objects), then expects exmit to stop with exit 1 naming services.xml as too big, without reading it whole. Nothing over 100 MB is committed.`n" }
[void]$Images.Add($img)
$img = New-BadImage 'missing-apphost-on-mailbox' 'Fatal: exit 1 naming applicationHost.config (missing on a server with IIS roles).' 'No fs/C/Windows/System32/inetsrv/config/applicationHost.config although the server has the Mailbox role (the web.config files are there).'
$img.Omit = @('apphost'); [void]$Images.Add($img)

# ---------------------------------------------------------------------------------------------
# Write
# ---------------------------------------------------------------------------------------------

$outRoots = @((Join-Path $Root 'examples'), (Join-Path $Root (Join-Path 'test' (Join-Path 'fixtures' 'images'))))
foreach ($img in $Images) {
    $d = Join-Path $Root ($img.Dir -replace '/', [System.IO.Path]::DirectorySeparatorChar)
    if (Test-Path -LiteralPath $d) { Remove-Item -LiteralPath $d -Recurse -Force }
}
$imagesRoot = $outRoots[1]
if (Test-Path -LiteralPath $imagesRoot) { Remove-Item -LiteralPath $imagesRoot -Recurse -Force }
foreach ($r in $outRoots) {
    if (-not (Test-Path -LiteralPath $r)) { New-Item -ItemType Directory -Path $r -Force | Out-Null }
    [System.IO.File]::WriteAllBytes((Join-Path $r 'LICENSE'), (Read-SourceBytes 'LICENSE'))
    # The images are data: git must keep their bytes (CRLF, BOMs, UTF-16) exactly.
    [System.IO.File]::WriteAllBytes((Join-Path $r '.gitattributes'), $Utf8NoBom.GetBytes("* -text`n*.md text`n"))
}
foreach ($img in $Images) { Write-Image $img }

# An index of the test images.
$idx = "# Server images for tests`n`nMade by ``scripts/make-images.ps1`` (run it with pwsh or Windows PowerShell 5.1: it rewrites this folder and examples/e19-cu12-oct22su identically). The tests read only these folders, never ../shared. Each image's README.md says what server it represents and what an audit should report.`n`n| image | build | roles |`n| --- | --- | --- |`n"
foreach ($img in $Images) {
    if ($img.Dir -like 'test/*') { $idx += '| ' + $img.Dir.Substring($T.Length) + ' | ' + $img.Build + ' | ' + $img.Role + ' |' + "`n" }
}
$idx += "`n$Attribution`n"
Write-Text $imagesRoot 'README.md' $idx 'utf8'
Write-Host 'done'
