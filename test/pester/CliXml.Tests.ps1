# The engine's CliXml reader on real captures and on hostile input.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    foreach ($engineSource in $EngineSources) { . $engineSource -NoRun }
}

Describe 'Read-ExmitCliXmlFile on real captures' {
    It 'reads ExSetup.xml as 15.2.986.5 from the typed parts, not the padded FileVersion' {
        $objects = Read-ExmitCliXmlFile -Path (Get-Fixture 'ExSetup.xml') -FileName 'exsetup.xml'
        @($objects).Count | Should -Be 1
        $objects[0].Props['FileVersion'] | Should -Be '15.02.0986.005'
        $fact = ConvertTo-ExmitFileVersionFact -Object $objects[0] -Source 'exsetup.xml' -DefaultFileName 'ExSetup.exe'
        $fact.version | Should -Be '15.2.986.5'
        $fact.fileName | Should -Be 'C:\Program Files\Microsoft\Exchange Server\V15\bin\ExSetup.exe'
    }

    It 'reads ExSetup1.xml as 15.2.1118.25' {
        $objects = Read-ExmitCliXmlFile -Path (Get-Fixture 'ExSetup1.xml') -FileName 'exsetup.xml'
        (ConvertTo-ExmitFileVersionFact -Object $objects[0] -Source 'exsetup.xml').version | Should -Be '15.2.1118.25'
    }

    It 'falls back to FileVersionRaw when the parts are absent' {
        $text = [System.IO.File]::ReadAllText((Get-Fixture 'ExSetup.xml')) -replace '<I32 N="File(Major|Minor|Build|Private)Part">\d+</I32>', ''
        $path = Join-Path $TestDrive 'raw-only.xml'
        [System.IO.File]::WriteAllText($path, $text)
        $objects = Read-ExmitCliXmlFile -Path $path -FileName 'exsetup.xml'
        (ConvertTo-ExmitFileVersionFact -Object $objects[0] -Source 'exsetup.xml').version | Should -Be '15.2.986.5'
    }

    It 'decodes _x000D__x000A_ escapes in ToString' {
        $objects = Read-ExmitCliXmlFile -Path (Get-Fixture 'ExSetup.xml') -FileName 'exsetup.xml'
        $objects[0].Text | Should -Match "ExSetup\.exe`r`nInternalName:"
    }

    It 'reads cachtokn before (10.0.17763.0) and after (10.0.17763.4968) the October 2023 update' {
        $before = Read-ExmitCliXmlFile -Path (Get-Fixture 'GetVersionInformationCachTokn.xml') -FileName 'cachtokn.xml'
        $after = Read-ExmitCliXmlFile -Path (Get-Fixture 'GetVersionInformationCachToknPatched.xml') -FileName 'cachtokn.xml'
        (ConvertTo-ExmitFileVersionFact -Object $before[0] -Source 'cachtokn.xml').version | Should -Be '10.0.17763.0'
        (ConvertTo-ExmitFileVersionFact -Object $after[0] -Source 'cachtokn.xml').version | Should -Be '10.0.17763.4968'
    }

    It 'takes only the top-level objects of GetService.xml as services' {
        $objects = Read-ExmitCliXmlFile -Path (Get-Fixture 'GetService.xml') -FileName 'services.xml' -MaxDepth 1
        $services = ConvertTo-ExmitServiceFacts -Objects $objects -Source 'services.xml'
        $services.Count | Should -Be 254
        @($services | ForEach-Object { $_.name } | Select-Object -Unique).Count | Should -Be 254
        $eems = @($services | Where-Object { $_.name -eq 'MSExchangeMitigation' })
        $eems.Count | Should -Be 1
        $eems[0].displayName | Should -Be 'Microsoft Exchange Emergency Mitigation Service'
        $eems[0].status | Should -Be 'Running'
        $eems[0].startType | Should -Be 'Automatic'
        ($services | Where-Object { $_.name -eq 'AJRouter' }).status | Should -Be 'Stopped'
        ($services | Where-Object { $_.name -eq 'AJRouter' }).startType | Should -Be 'Manual'
    }

    It 'reads an enum given as an Obj with an I32 and trusts the I32 over ToString' {
        $text = [System.IO.File]::ReadAllText((Get-Fixture 'GetServiceMitigation.xml'))
        # ToString lies; the I32 says Stopped (1) and Disabled (4).
        $text = $text -replace '(<ToString>Running</ToString>\s*)<I32>4</I32>', '$1<I32>1</I32>'
        $text = $text -replace '(<ToString>Automatic</ToString>\s*)<I32>2</I32>', '$1<I32>4</I32>'
        $text | Should -Match '<ToString>Running</ToString>\s*<I32>1</I32>'
        $text | Should -Match '<ToString>Automatic</ToString>\s*<I32>4</I32>'
        $path = Join-Path $TestDrive 'lying.xml'
        [System.IO.File]::WriteAllText($path, $text)
        $services = ConvertTo-ExmitServiceFacts -Objects (Read-ExmitCliXmlFile -Path $path -FileName 'services.xml' -MaxDepth 1)
        $services.Count | Should -Be 1
        $services[0].status | Should -Be 'Stopped'
        $services[0].startType | Should -Be 'Disabled'
    }

    It 'reads an enum given as a string (as the nested snapshots carry them)' {
        $text = [System.IO.File]::ReadAllText((Get-Fixture 'GetServiceMitigation.xml'))
        $start = $text.IndexOf('<Obj RefId="3">')
        $end = $text.IndexOf('</Obj>', $text.IndexOf('<Ref N="RequiredServices" RefId="5" />')) + 6
        $inner = $text.Substring($start, $end - $start)
        $document = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">' + $inner.Replace('<TNRef RefId="0" />', '<TN RefId="0"><T>System.ServiceProcess.ServiceController</T></TN>').Replace('<TNRef RefId="1" />', '<TN RefId="1"><T>System.Object[]</T></TN>') + '</Objs>'
        $path = Join-Path $TestDrive 'strings.xml'
        [System.IO.File]::WriteAllText($path, $document)
        $services = ConvertTo-ExmitServiceFacts -Objects (Read-ExmitCliXmlFile -Path $path -FileName 'services.xml' -MaxDepth 1)
        $services[0].name | Should -Be 'MSExchangeADTopology'
        $services[0].status | Should -Be 'Running'
        $services[0].startType | Should -Be 'Automatic'
    }

    It 'resolves Ref and TNRef' {
        $objects = Read-ExmitCliXmlFile -Path (Get-Fixture 'GetServiceMitigation.xml') -FileName 'services.xml' -MaxDepth 3
        $required = $objects[0].Props['RequiredServices']
        $required.TypeNames[0] | Should -Be 'System.ServiceProcess.ServiceController[]'
        $required.Items[0].Props['ServiceName'] | Should -Be 'MSExchangeADTopology'
        $objects[0].TypeNames[0] | Should -Be 'System.ServiceProcess.ServiceController'
    }

    It 'reads the synthetic registry, environment, os and apppools exports' {
        $registry = ConvertTo-ExmitRegistryFacts -Objects (Read-ExmitCliXmlFile -Path (Get-Fixture 'registry.xml') -FileName 'registry.xml') -RequireSetup
        ($registry | ForEach-Object { $_.name }) -join ',' | Should -Be 'AdminTools,ClientAccessRole,MailboxRole,Setup'
        $setup = $registry | Where-Object { $_.name -eq 'Setup' }
        $setup.values['MsiBuildMajor'] | Should -Be 986
        $setup.values['MsiBuildMajor'] | Should -BeOfType [int]
        $setup.values.Contains('PSPath') | Should -BeFalse
        ($registry | Where-Object { $_.name -eq 'MailboxRole' }).values['Flags'] | Should -Be "a`nb"
        $environment = ConvertTo-ExmitEnvironmentFact -Objects (Read-ExmitCliXmlFile -Path (Get-Fixture 'environment.xml') -FileName 'environment.xml')
        $environment['WINDIR'] | Should -Be 'C:\windows'
        $os = ConvertTo-ExmitOsFact -Objects (Read-ExmitCliXmlFile -Path (Get-Fixture 'os.xml') -FileName 'os.xml')
        $os.version | Should -Be '10.0.17763'
        $os.buildNumber | Should -Be '17763'
        $os.caption | Should -Be 'Microsoft Windows Server 2019 Datacenter'
        $pools = ConvertTo-ExmitAppPoolFacts -Objects (Read-ExmitCliXmlFile -Path (Get-Fixture 'apppools.xml') -FileName 'apppools.xml')
        ($pools | Where-Object { $_.name -eq 'MSExchangeOABAppPool' }).state | Should -Be 'Stopped'
        ($pools | Where-Object { $_.name -eq 'MSExchangeOABAppPool' }).autoStart | Should -BeFalse
        ($pools | Where-Object { $_.name -eq 'MSExchangeOWAAppPool' }).startMode | Should -Be 'AlwaysRunning'
    }
}

Describe 'Encodings' {
    BeforeAll {
        $script:Source = [System.IO.File]::ReadAllText((Get-Fixture 'GetServiceMitigation.xml'))
        function Get-ServicesJson {
            param([string]$Path)
            $objects = Read-ExmitCliXmlFile -Path $Path -FileName 'services.xml' -MaxDepth 1
            return (ConvertTo-TestJson (ConvertTo-ExmitServiceFacts -Objects $objects))
        }
    }

    It 'gives the same result for UTF-16LE with BOM, UTF-8 with BOM and UTF-8 without BOM, LF or CRLF' {
        $utf16 = Join-Path $TestDrive 'utf16.xml'
        $utf8bom = Join-Path $TestDrive 'utf8bom.xml'
        $utf8 = Join-Path $TestDrive 'utf8.xml'
        $lf = Join-Path $TestDrive 'lf.xml'
        [System.IO.File]::WriteAllText($utf16, $Source, (New-Object System.Text.UnicodeEncoding $false, $true))
        [System.IO.File]::WriteAllText($utf8bom, $Source, (New-Object System.Text.UTF8Encoding $true))
        [System.IO.File]::WriteAllText($utf8, $Source, (New-Object System.Text.UTF8Encoding $false))
        [System.IO.File]::WriteAllText($lf, ($Source -replace "`r`n", "`n"), (New-Object System.Text.UTF8Encoding $false))
        [System.IO.File]::ReadAllBytes($utf16)[0] | Should -Be 0xFF
        [System.IO.File]::ReadAllBytes($utf8)[0] | Should -Be ([byte][char]'<')
        $expected = Get-ServicesJson $utf16
        $expected | Should -Match 'MSExchangeMitigation'
        Get-ServicesJson $utf8bom | Should -Be $expected
        Get-ServicesJson $utf8 | Should -Be $expected
        Get-ServicesJson $lf | Should -Be $expected
    }

    It 'keeps non-ASCII text intact in UTF-16LE' {
        $path = Join-Path $TestDrive 'exsetup16.xml'
        [System.IO.File]::WriteAllText($path, [System.IO.File]::ReadAllText((Get-Fixture 'ExSetup.xml')), (New-Object System.Text.UnicodeEncoding $false, $true))
        $objects = Read-ExmitCliXmlFile -Path $path -FileName 'exsetup.xml'
        $objects[0].Props['ProductName'] | Should -Be ('Microsoft' + [char]0xAE + ' Exchange')
    }
}

Describe 'Hostile and broken CliXml' {
    BeforeAll {
        function Get-ReadError {
            param([string]$Path, [string]$FileName, [long]$MaxBytes = 64MB)
            try {
                $null = Read-ExmitCliXmlFile -Path $Path -FileName $FileName -MaxBytes $MaxBytes
            } catch {
                return (ConvertTo-ExmitErrorObject $_)
            }
            throw 'no error'
        }
    }

    It 'refuses a DOCTYPE with an entity, naming the file in one line' {
        $path = Join-Path $TestDrive 'dtd.xml'
        [System.IO.File]::WriteAllText($path, "<?xml version=`"1.0`"?>`r`n<!DOCTYPE Objs [<!ENTITY x `"boom`">]>`r`n<Objs Version=`"1.1.0.1`" xmlns=`"http://schemas.microsoft.com/powershell/2004/04`"><S>&x;</S></Objs>")
        $e = Get-ReadError -Path $path -FileName 'registry.xml'
        $e.kind | Should -Be 'image'
        $e.file | Should -Be 'registry.xml'
        $e.message | Should -Match '^registry\.xml: '
        $e.message | Should -Match 'DTD'
        $e.message | Should -Not -Match 'DtdProcessing|enable DTD'
        $e.message | Should -Not -Match "[`r`n]"
    }

    It 'refuses an external entity (no file is read)' {
        $path = Join-Path $TestDrive 'xxe.xml'
        [System.IO.File]::WriteAllText($path, "<!DOCTYPE Objs [<!ENTITY x SYSTEM `"file:///etc/passwd`">]><Objs xmlns=`"http://schemas.microsoft.com/powershell/2004/04`"><S>&x;</S></Objs>")
        (Get-ReadError -Path $path -FileName 'os.xml').file | Should -Be 'os.xml'
    }

    It 'refuses a file over the size limit by name, before parsing it' {
        $e = Get-ReadError -Path (Get-Fixture 'GetService.xml') -FileName 'services.xml' -MaxBytes 100000
        $e.kind | Should -Be 'image'
        $e.file | Should -Be 'services.xml'
        $e.message | Should -Match '^services\.xml: larger than the limit'
    }

    It 'refuses a file that is not CliXml' {
        $path = Join-Path $TestDrive 'other.xml'
        [System.IO.File]::WriteAllText($path, '<configuration><system.webServer /></configuration>')
        $e = Get-ReadError -Path $path -FileName 'apppools.xml'
        $e.file | Should -Be 'apppools.xml'
        $e.message | Should -Match 'not a PowerShell CliXml export'
    }

    It 'refuses a file that is not XML at all' {
        $path = Join-Path $TestDrive 'text.xml'
        [System.IO.File]::WriteAllText($path, 'Name State' + "`r`n" + 'DefaultAppPool Started')
        $e = Get-ReadError -Path $path -FileName 'apppools.xml'
        $e.message | Should -Match '^apppools\.xml: not well-formed XML'
    }

    It 'refuses bytes that are not valid UTF-8' {
        $path = Join-Path $TestDrive 'bad-utf8.xml'
        [System.IO.File]::WriteAllBytes($path, [byte[]](0x3C, 0x4F, 0xC3, 0x28, 0x3E))
        (Get-ReadError -Path $path -FileName 'os.xml').message | Should -Match 'not readable'
    }

    It 'refuses an unknown Ref and a bad number, naming the file' {
        $ns = 'xmlns="http://schemas.microsoft.com/powershell/2004/04"'
        $path = Join-Path $TestDrive 'ref.xml'
        [System.IO.File]::WriteAllText($path, "<Objs $ns><Obj RefId=`"0`"><MS><Ref N=`"x`" RefId=`"9`" /></MS></Obj></Objs>")
        (Get-ReadError -Path $path -FileName 'os.xml').message | Should -Match "Ref to unknown RefId"
        [System.IO.File]::WriteAllText($path, "<Objs $ns><Obj RefId=`"0`"><MS><I32 N=`"x`">many</I32></MS></Obj></Objs>")
        (Get-ReadError -Path $path -FileName 'os.xml').file | Should -Be 'os.xml'
    }

    It 'stops at a nesting limit instead of recursing without end' {
        $ns = 'xmlns="http://schemas.microsoft.com/powershell/2004/04"'
        $open = (1..80 | ForEach-Object { "<Obj N=`"p`" RefId=`"$_`"><MS>" }) -join ''
        $close = (1..80 | ForEach-Object { '</MS></Obj>' }) -join ''
        $path = Join-Path $TestDrive 'deep.xml'
        [System.IO.File]::WriteAllText($path, "<Objs $ns><Obj RefId=`"0`"><MS>$open$close</MS></Obj></Objs>")
        try {
            $null = Read-ExmitCliXmlFile -Path $path -FileName 'os.xml' -MaxDepth 1000
            throw 'no error'
        } catch {
            (ConvertTo-ExmitErrorObject $_).message | Should -Match 'nested more than'
        }
    }

    It 'does not rehydrate types: a ScriptBlock stays text' {
        $ns = 'xmlns="http://schemas.microsoft.com/powershell/2004/04"'
        $path = Join-Path $TestDrive 'sbk.xml'
        [System.IO.File]::WriteAllText($path, "<Objs $ns><Obj RefId=`"0`"><MS><SBK N=`"Caption`">Set-Content x y</SBK><S N=`"Version`">1</S><S N=`"BuildNumber`">1</S></MS></Obj></Objs>")
        $objects = Read-ExmitCliXmlFile -Path $path -FileName 'os.xml'
        $objects[0].Props['Caption'] | Should -BeOfType [string]
    }
}

Describe 'Real Windows PowerShell exports of other shapes (CSS-Exchange e19)' {
    It 'reads a WMI object (Win32_OperatingSystem.xml) as os.xml, with its class metadata kept apart from its properties' {
        $objects = Read-ExmitCliXmlFile -Path (Get-Fixture 'Win32_OperatingSystem.xml') -FileName 'os.xml'
        @($objects).Count | Should -Be 1
        $objects[0].TypeNames[0] | Should -Be 'System.Management.ManagementObject#root\cimv2\Win32_OperatingSystem'
        $objects[0].Props['__CLASS'] | Should -Be 'Win32_OperatingSystem'
        @($objects[0].Props['__DERIVATION'].Items) -join ',' | Should -Be 'CIM_OperatingSystem,CIM_LogicalElement,CIM_ManagedSystemElement'
        $fact = ConvertTo-ExmitOsFact -Objects $objects
        $fact.caption | Should -Be 'Microsoft Windows Server 2019 Datacenter'
        $fact.version | Should -Be '10.0.17763'
        $fact.buildNumber | Should -Be '17763'
    }

    It 'reads an os.xml made of the real WMI export in an image' {
        $image = New-TestImage -Root (Join-Path $TestDrive 'wmi-image') -Without @('os.xml')
        Copy-Item -LiteralPath (Get-Fixture 'Win32_OperatingSystem.xml') -Destination (Join-Path $image 'os.xml')
        $facts = Get-ExmitImageFacts -Path $image
        $facts.os.caption | Should -Be 'Microsoft Windows Server 2019 Datacenter'
        $facts.os.buildNumber | Should -Be '17763'
    }

    It 'reads the IIS global modules (<Name>): a PSCustomObject holding a list of modules with signature details and enums' -ForEach @(
        @{ Name = 'GetIISModules.xml'; Count = 33; HasTokenCache = $true }
        @{ Name = 'GetIISModulesNoTokenCacheModule.xml'; Count = 32; HasTokenCache = $false }
    ) {
        $objects = Read-ExmitCliXmlFile -Path (Get-Fixture $Name) -FileName $Name
        $top = $objects[0]
        ConvertTo-ExmitBoolean $top.Props['AllModulesSigned'] | Should -BeTrue
        $modules = @($top.Props['ModuleList'].Items)
        $modules.Count | Should -Be $Count
        $names = @($modules | ForEach-Object { ConvertTo-ExmitString $_.Props['Name'] })
        $names[0] | Should -Be 'HttpLoggingModule'
        ($names -contains 'TokenCacheModule') | Should -Be $HasTokenCache
        $status = $modules[0].Props['SignatureDetails'].Props['SignatureStatus']
        ConvertTo-ExmitString $status | Should -Be '0'
        $status.Text | Should -Be 'Valid'
        ConvertTo-ExmitBoolean $modules[0].Props['SignatureDetails'].Props['IsMicrosoftSigned'] | Should -BeTrue
    }

    It 'reads the Exchange app pools export: a Hashtable of PSCustomObjects, settings as text, file lines carrying PSDrive and PSProvider' {
        $objects = Read-ExmitCliXmlFile -Path (Get-Fixture 'GetExchangeAppPoolsInformation.xml') -FileName 'apppools.xml'
        $pools = $objects[0].Dict
        $pools.Count | Should -Be 17
        $pool = $pools['msexchangemapifrontendapppool']
        $add = $pool.Props['AppSettings'].Props['add']
        ConvertTo-ExmitString $add.Props['name'] | Should -Be 'MSExchangeMapiFrontEndAppPool'
        ConvertTo-ExmitBoolean $add.Props['autoStart'] | Should -BeTrue
        ConvertTo-ExmitString $pool.Props['AppSettings'].Props['state'] | Should -Be 'Started'
        # Each line of Get-Content is an Obj element around the string, with PSPath, PSDrive and PSProvider notes.
        $line = @($pool.Props['ConfigContent'].Items)[0]
        Test-ExmitCliObject $line | Should -BeTrue
        $line.Props['PSDrive'].Text | Should -Be 'C'
        $line.Props['PSProvider'].Text | Should -Be 'Microsoft.PowerShell.Core\FileSystem'
        ConvertTo-ExmitString $line | Should -Be '<?xml version="1.0" encoding="utf-8" ?>'
    }
}

Describe 'String and boolean conversions of CliXml objects (Obj elements)' {
    BeforeAll {
        # An extended bool and string (Export-Clixml writes a value with added members as an <Obj> around it).
        $path = Join-Path $TestDrive 'extended.xml'
        [System.IO.File]::WriteAllText($path, @'
<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">
  <Obj RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>
    <MS>
      <Obj N="autoStart" RefId="1"><TN RefId="1"><T>System.Boolean</T><T>System.ValueType</T><T>System.Object</T></TN><ToString>False</ToString><B>false</B><MS><S N="Source">appcmd</S></MS></Obj>
      <Obj N="Caption" RefId="2"><TN RefId="2"><T>System.String</T><T>System.Object</T></TN><ToString>Windows Server</ToString><S>Windows Server</S><MS><S N="Source">wmi</S></MS></Obj>
    </MS>
  </Obj>
</Objs>
'@)
        $script:Extended = (Read-ExmitCliXmlFile -Path $path -FileName 'extended.xml')[0]
    }

    It 'keeps the value of an extended boolean' {
        ConvertTo-ExmitBoolean $Extended.Props['autoStart'] | Should -BeExactly $false
    }

    It 'keeps the value of an extended string' {
        ConvertTo-ExmitString $Extended.Props['Caption'] | Should -BeExactly 'Windows Server'
    }
}
