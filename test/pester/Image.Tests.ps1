# gather and readFiles on a server image made of the real captures.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    foreach ($engineSource in $EngineSources) { . $engineSource -NoRun }
    $script:Image = New-TestImage -Root (Join-Path $TestDrive 'image')
    $script:Facts = Get-ExmitImageFacts -Path $Image
    function Get-RequestError {
        param([scriptblock]$Script)
        try {
            $null = & $Script
        } catch {
            return (ConvertTo-ExmitErrorObject $_)
        }
        throw 'no error'
    }
}

Describe 'gather on an image' {
    It 'reads every export' {
        $Facts.target.kind | Should -Be 'image'
        $Facts.target.path | Should -Be ([System.IO.Path]::GetFullPath($Image))
        $Facts.target.computerName | Should -Be 'SOLO-E19A'
        $Facts.exsetup.version | Should -Be '15.2.986.5'
        $Facts.cachtokn.version | Should -Be '10.0.17763.0'
        $Facts.services.Count | Should -Be 254
        $Facts.os.buildNumber | Should -Be '17763'
        $Facts.environment['ExchangeInstallPath'] | Should -Be 'C:\Program Files\Microsoft\Exchange Server\V15\'
        $Facts.appPools.Count | Should -Be 4
        @($Facts.missing).Count | Should -Be 0
    }

    It 'finds applicationHost.config under the windir of environment.xml, case-insensitively, as its exact bytes and SHA-256' {
        $Facts.applicationHost.path | Should -Be 'C:\windows\System32\inetsrv\config\applicationHost.config'
        (ConvertFrom-TestData $Facts.applicationHost.data) | Should -Match '<configuration>'
        $Facts.applicationHost.data | Should -Be ([System.Convert]::ToBase64String([System.IO.File]::ReadAllBytes((Get-Fixture 'applicationHost.config'))))
        $Facts.applicationHost.sha256 | Should -Be (Get-TestFileSha256 (Get-Fixture 'applicationHost.config'))
    }

    It 'names missing optional exports and keeps arrays as arrays in JSON' {
        $root = New-TestImage -Root (Join-Path $TestDrive 'partial') -ServicesFixture 'GetServiceMitigation.xml' -Without @('os.xml', 'apppools.xml', 'environment.xml', 'exsetup.xml', 'applicationhost.config')
        $json = ConvertTo-ExmitJsonLine ([ordered]@{ id = 1; ok = $true; result = (Get-ExmitImageFacts -Path $root) })
        $json | Should -Match '"services":\[\{"name":"MSExchangeMitigation","displayName":"Microsoft Exchange Emergency Mitigation Service","status":"Running","startType":"Automatic"\}\]'
        $json | Should -Match '"missing":\["exsetup.xml","os.xml","environment.xml","apppools.xml","applicationHost.config"\]'
        $json | Should -Match '"exsetup":null'
        $json | Should -Match '"appPools":null'
        $json | Should -Match '"applicationHost":null'
        $parsed = $json | ConvertFrom-Json
        $parsed.result.services.GetType().IsArray | Should -BeTrue
    }

    It 'writes an empty missing list as []' {
        (ConvertTo-ExmitJsonLine $Facts) | Should -Match '"missing":\[\]'
    }

    It 'assumes C:\Windows without environment.xml' {
        $root = New-TestImage -Root (Join-Path $TestDrive 'noenv') -Without @('environment.xml')
        $facts = Get-ExmitImageFacts -Path $root
        $facts.applicationHost.path | Should -Be 'C:\Windows\System32\inetsrv\config\applicationHost.config'
        $facts.environment | Should -BeNullOrEmpty
        $facts.missing | Should -Contain 'environment.xml'
    }

    It 'fails with an image error naming registry.xml when it is missing' {
        $root = New-TestImage -Root (Join-Path $TestDrive 'noreg') -ServicesFixture 'GetServiceMitigation.xml' -Without @('registry.xml')
        $e = Get-RequestError { Get-ExmitImageFacts -Path $root }
        $e.kind | Should -Be 'image'
        $e.file | Should -Be 'registry.xml'
    }

    It 'fails naming registry.xml when it has no Setup key' {
        $root = New-TestImage -Root (Join-Path $TestDrive 'nosetup') -ServicesFixture 'GetServiceMitigation.xml'
        $objects = Import-Clixml -LiteralPath (Get-Fixture 'registry.xml') | Where-Object { $_.PSChildName -ne 'Setup' }
        $objects | Export-Clixml -LiteralPath (Join-Path $root 'Registry.xml')
        $e = Get-RequestError { Get-ExmitImageFacts -Path $root }
        $e.kind | Should -Be 'image'
        $e.file | Should -Be 'registry.xml'
        $e.message | Should -Match '^registry\.xml: no Setup key'
    }

    It 'fails naming an optional export that is present but not the export it should be' {
        $root = New-TestImage -Root (Join-Path $TestDrive 'badpools') -ServicesFixture 'GetServiceMitigation.xml'
        Copy-Item -LiteralPath (Get-Fixture 'ExSetup.xml') -Destination (Join-Path $root 'apppools.xml') -Force
        $e = Get-RequestError { Get-ExmitImageFacts -Path $root }
        $e.file | Should -Be 'apppools.xml'
        $e.message | Should -Match 'not an export of IIS'
    }

    It 'fails naming an optional export that is not well-formed' {
        $root = New-TestImage -Root (Join-Path $TestDrive 'bados') -ServicesFixture 'GetServiceMitigation.xml'
        [System.IO.File]::WriteAllText((Join-Path $root 'os.xml'), '<Objs')
        (Get-RequestError { Get-ExmitImageFacts -Path $root }).file | Should -Be 'os.xml'
    }

    It 'refuses an oversize export by name' {
        $root = New-TestImage -Root (Join-Path $TestDrive 'big')
        $saved = $ExmitLimits.CliXmlBytes
        try {
            $ExmitLimits.CliXmlBytes = 1000000
            $e = Get-RequestError { Get-ExmitImageFacts -Path $root }
        } finally {
            $ExmitLimits.CliXmlBytes = $saved
        }
        $e.file | Should -Be 'services.xml'
        $e.message | Should -Match 'larger than the limit'
    }

    It 'reports a missing image folder as an image error' {
        (Get-RequestError { Get-ExmitImageFacts -Path (Join-Path $TestDrive 'nowhere') }).kind | Should -Be 'image'
    }
}

Describe 'readFiles on an image' {
    BeforeAll {
        $owa = Join-Path $Image 'fs/c/program files/microsoft/exchange server/v15/FrontEnd/HttpProxy/OWA'
        $null = New-Item -ItemType Directory -Force -Path $owa
        # UTF-8 with a BOM, whatever the capture has.
        $text = [System.IO.File]::ReadAllText((Get-Fixture 'DefaultWebSite-OWA_web.config'))
        $bytes = (New-Object System.Text.UTF8Encoding $true).GetPreamble() + [System.Text.Encoding]::UTF8.GetBytes($text)
        [System.IO.File]::WriteAllBytes((Join-Path $owa 'Web.Config'), [byte[]]$bytes)
    }

    It 'maps X:\a\b to fs/X/a/b resolving every segment case-insensitively, bytes as on disk (BOM kept)' {
        $result = Read-ExmitImageFiles -Path $Image -Paths @('C:\Program Files\Microsoft\Exchange Server\V15\FrontEnd\HttpProxy\owa\web.config')
        $result.files.Count | Should -Be 1
        $result.files[0].path | Should -Be 'C:\Program Files\Microsoft\Exchange Server\V15\FrontEnd\HttpProxy\owa\web.config'
        (ConvertFrom-TestData $result.files[0].data) | Should -Match '<configuration'
        $onDisk = Join-Path $Image 'fs/c/program files/microsoft/exchange server/v15/FrontEnd/HttpProxy/OWA/Web.Config'
        $result.files[0].data | Should -Be ([System.Convert]::ToBase64String([System.IO.File]::ReadAllBytes($onDisk)))
        $result.files[0].sha256 | Should -Be (Get-TestFileSha256 $onDisk)
    }

    It 'accepts forward slashes and a lower-case drive' {
        (ConvertFrom-TestData (Read-ExmitImageFiles -Path $Image -Paths @('c:/windows/system32/inetsrv/config/APPLICATIONHOST.CONFIG')).files[0].data) | Should -Match '<configuration>'
    }

    It 'gives an empty file as empty data with its SHA-256, not as a file that does not exist' {
        $dir = Join-Path $Image 'fs/C/inetpub/empty'
        $null = New-Item -ItemType Directory -Force -Path $dir
        [System.IO.File]::WriteAllBytes((Join-Path $dir 'web.config'), [byte[]]@())
        try {
            $bytes = Read-ExmitImageFileBytes -Path (Join-Path $dir 'web.config') -DisplayName 'web.config'
            , $bytes | Should -BeOfType [byte[]]
            (ConvertTo-ExmitJsonLine (Read-ExmitImageFiles -Path $Image -Paths @('C:\inetpub\empty\web.config'))) |
                Should -Be '{"files":[{"path":"C:\\inetpub\\empty\\web.config","data":"","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}'
        } finally {
            Remove-Item -LiteralPath $dir -Recurse -Force
        }
    }

    It 'hands a file over as one byte array, as read' {
        $onDisk = Join-Path $Image 'fs/c/program files/microsoft/exchange server/v15/FrontEnd/HttpProxy/OWA/Web.Config'
        $bytes = Read-ExmitImageFileBytes -Path $onDisk -DisplayName 'web.config'
        , $bytes | Should -BeOfType [byte[]]
        $bytes.Length | Should -Be ([System.IO.File]::ReadAllBytes($onDisk).Length)
    }

    It 'gives null data and sha256 for a file that does not exist' {
        $result = Read-ExmitImageFiles -Path $Image -Paths @('C:\inetpub\wwwroot\web.config', 'D:\nothing\web.config')
        $result.files.Count | Should -Be 2
        $result.files[0].data | Should -BeNullOrEmpty
        $result.files[1].data | Should -BeNullOrEmpty
        (ConvertTo-ExmitJsonLine $result) | Should -Be '{"files":[{"path":"C:\\inetpub\\wwwroot\\web.config","data":null,"sha256":null},{"path":"D:\\nothing\\web.config","data":null,"sha256":null}]}'
    }

    It 'keeps one file and no files as arrays' {
        (ConvertTo-ExmitJsonLine (Read-ExmitImageFiles -Path $Image -Paths @('C:\x'))) | Should -Be '{"files":[{"path":"C:\\x","data":null,"sha256":null}]}'
        (ConvertTo-ExmitJsonLine (Read-ExmitImageFiles -Path $Image -Paths @())) | Should -Be '{"files":[]}'
    }

    It 'refuses <Path>' -ForEach @(
        @{ Path = 'C:\Windows\..\..\..\etc\passwd' }
        @{ Path = 'C:\inetpub\...\x' }
        @{ Path = '..\registry.xml' }
        @{ Path = '\\server\share\web.config' }
        @{ Path = 'C:relative\web.config' }
        @{ Path = '/etc/passwd' }
        @{ Path = 'C:\inetpub\web.config:stream' }
    ) {
        $e = Get-RequestError { Read-ExmitImageFiles -Path $Image -Paths @($Path) }
        $e.kind | Should -Be 'input'
    }

    It 'refuses a link that leads outside the image' {
        $outside = Join-Path $TestDrive 'secret.txt'
        [System.IO.File]::WriteAllText($outside, 'secret')
        $dir = Join-Path $Image 'fs/C/inetpub'
        $null = New-Item -ItemType Directory -Force -Path $dir
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $dir 'web.config') -Target $outside
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $dir 'up') -Target $TestDrive
        $e = Get-RequestError { Read-ExmitImageFiles -Path $Image -Paths @('C:\inetpub\web.config') }
        $e.kind | Should -Be 'image'
        $e.message | Should -Match 'outside the image'
        (Get-RequestError { Read-ExmitImageFiles -Path $Image -Paths @('C:\inetpub\up\secret.txt') }).message | Should -Match 'outside the image'
    }

    It 'follows a link that stays inside the image (PowerShell 7; Windows PowerShell 5.1 refuses every link)' {
        $dir = Join-Path $Image 'fs/C/linked'
        $null = New-Item -ItemType Directory -Force -Path $dir
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $dir 'config') -Target (Join-Path $Image 'fs/C/Windows/System32/inetsrv/config')
        if ($PSVersionTable.PSVersion.Major -ge 7) {
            (ConvertFrom-TestData (Read-ExmitImageFiles -Path $Image -Paths @('C:\linked\config\applicationHost.config')).files[0].data) | Should -Match '<configuration>'
        } else {
            (Get-RequestError { Read-ExmitImageFiles -Path $Image -Paths @('C:\linked\config\applicationHost.config') }).kind | Should -Be 'image'
        }
    }

    It 'refuses a file over the size limit' {
        $saved = $ExmitLimits.FileBytes
        try {
            $ExmitLimits.FileBytes = 1000
            $e = Get-RequestError { Read-ExmitImageFiles -Path $Image -Paths @('C:\Windows\System32\inetsrv\config\applicationHost.config') }
        } finally {
            $ExmitLimits.FileBytes = $saved
        }
        $e.message | Should -Match 'larger than the limit'
    }
}

Describe 'gather with a services list' {
    BeforeAll {
        function Get-ServiceFactsJson {
            param([object[]]$Facts)
            return (ConvertTo-TestJson ([object[]]@($Facts)))
        }
    }

    It 'gives, for the services asked (any case), the facts of the whole read, from the real services.xml of <Name>' -ForEach @(
        @{ Name = 'e15-cu23-mar23su' }
        @{ Name = 'e16-cu22-nov22su' }
        @{ Name = 'e19-utf8' }
        @{ Name = 'e19-edge' }
    ) {
        $path = Join-Path $RepoRoot ('test/fixtures/images/{0}/services.xml' -f $Name)
        $all = ConvertTo-ExmitServiceFacts -Objects (Read-ExmitCliXmlFile -Path $path -FileName 'services.xml' -MaxDepth 1)
        $names = @($all | ForEach-Object { $_.name })
        # First, last, one in the middle, one in odd case, and one that is not there.
        $wanted = @($names[0], $names[$names.Count - 1], $names[[int]($names.Count / 2)].ToUpperInvariant(), 'NoSuchService')
        $expected = Select-ExmitServiceFacts -Facts $all -Names $wanted
        @($expected).Count | Should -Be 3
        $filtered = Select-ExmitServiceFacts -Facts (ConvertTo-ExmitServiceFacts -Objects (Read-ExmitCliXmlEntries -Path $path -FileName 'services.xml' -Names $wanted -MaxDepth 1)) -Names $wanted
        (Get-ServiceFactsJson $filtered) | Should -Be (Get-ServiceFactsJson $expected)
        # Streamed entry by entry: only the wanted entries were converted.
        $text = Get-ExmitCliXmlText -Path $path -FileName 'services.xml' -MaxBytes 64MB
        $subset = Read-ExmitCliXmlSubset -Text $text -FileName 'services.xml' -Names $wanted -Properties @('ServiceName', 'Name') -MaxDepth 1
        $subset | Should -Not -BeNullOrEmpty
        $subset.Count | Should -Be 3
    }

    It 'takes only top-level services, not the copies nested under DependentServices' {
        # W3SVC depends on WAS: WAS has a copy of W3SVC nested in its DependentServices.
        $path = Get-Fixture 'GetService.xml'
        [System.IO.File]::ReadAllText($path) | Should -Match '<S N="ServiceName">W3SVC</S>[\s\S]*<S N="ServiceName">W3SVC</S>'
        $facts = ConvertTo-ExmitServiceFacts -Objects (Read-ExmitCliXmlEntries -Path $path -FileName 'services.xml' -Names @('w3svc', 'WAS') -MaxDepth 1)
        @($facts | ForEach-Object { $_.name }) -join ',' | Should -Be 'W3SVC,WAS'
    }

    It 'gives the same ServerFacts as a whole read, except the services not asked for' {
        $wanted = @('MSExchangeMitigation', 'w3svc', 'MSExchangeFrontEndTransport')
        $whole = Get-ExmitImageFacts -Path $Image
        $filtered = Get-ExmitImageFacts -Path $Image -Services $wanted
        $whole.services = [object[]](Select-ExmitServiceFacts -Facts $whole.services -Names $wanted)
        @($filtered.services).Count | Should -Be 3
        (ConvertTo-TestJson $filtered) | Should -Be (ConvertTo-TestJson $whole)
        (ConvertTo-ExmitJsonLine (Get-ExmitImageFacts -Path $Image -Services @())) | Should -Match '"services":\[\]'
    }

    It 'falls back to the whole read, with its errors, on an export it cannot judge entry by entry' {
        $root = New-TestImage -Root (Join-Path $TestDrive 'oddservices') -ServicesFixture 'GetServiceMitigation.xml'
        $saved = $ExmitLimits.CliXmlBytes
        try {
            $ExmitLimits.CliXmlBytes = 100
            $e = Get-RequestError { Get-ExmitImageFacts -Path $root -Services @('W3SVC') }
        } finally {
            $ExmitLimits.CliXmlBytes = $saved
        }
        $e.kind | Should -Be 'image'
        [System.IO.File]::WriteAllText((Join-Path $root 'SERVICES.xml'), '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S>not a service</S></Objs>')
        $e = Get-RequestError { Get-ExmitImageFacts -Path $root -Services @('W3SVC') }
        $e.file | Should -Be 'services.xml'
        $e.message | Should -Match 'not a Get-Service export'
        [System.IO.File]::WriteAllText((Join-Path $root 'SERVICES.xml'), '<!DOCTYPE x [<!ENTITY a "b">]><Objs>&a;</Objs>')
        (Get-RequestError { Get-ExmitImageFacts -Path $root -Services @('W3SVC') }).message | Should -Match 'services\.xml: not well-formed XML'
    }
}

Describe 'Reparse points that are not links (deduplicated, cloud placeholder, compressed files)' {
    BeforeAll {
        # On Linux a symbolic link stands in for a Windows reparse point; Get-ExmitReparseTag (the
        # thin wrapper over FindFirstFile) says what kind it is.
        $script:Outside = Join-Path $TestDrive 'chunk-store.bin'
        [System.IO.File]::WriteAllText($Outside, '<configuration><!-- deduplicated --></configuration>')
        $dir = Join-Path $Image 'fs/C/dedup'
        $null = New-Item -ItemType Directory -Force -Path $dir
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $dir 'web.config') -Target $Outside
    }

    It 'calls tag <Tag> a <Kind>' -ForEach @(
        @{ Tag = 'IO_REPARSE_TAG_SYMLINK 0xA000000C'; Value = 2684354572; Kind = 'link' }
        @{ Tag = 'IO_REPARSE_TAG_MOUNT_POINT 0xA0000003 (junction)'; Value = 2684354563; Kind = 'link' }
        @{ Tag = 'IO_REPARSE_TAG_LX_SYMLINK 0xA000001D (a name surrogate)'; Value = 2684354589; Kind = 'link' }
        @{ Tag = 'unreadable (-1)'; Value = -1; Kind = 'link' }
        @{ Tag = 'IO_REPARSE_TAG_DEDUP 0x80000013'; Value = 2147483667; Kind = 'file' }
        @{ Tag = 'IO_REPARSE_TAG_CLOUD_6 0x9000601A'; Value = 2415943706; Kind = 'file' }
        @{ Tag = 'IO_REPARSE_TAG_WOF 0x80000017 (compressed)'; Value = 2147483671; Kind = 'file' }
    ) {
        Mock Get-ExmitReparseTag { [long]$Value }
        Get-ExmitReparseKind (New-Object System.IO.FileInfo (Join-Path $Image 'fs/C/dedup/web.config')) | Should -Be $Kind
    }

    It 'tells links apart without a tag (as off Windows) by their target, and plain files are no reparse points' {
        # Off Windows the real wrapper has no tag to give; the mock makes the same path run everywhere.
        if ([System.Environment]::OSVersion.Platform -ne [System.PlatformID]::Win32NT) { Get-ExmitReparseTag -Path $Outside | Should -BeNullOrEmpty }
        Mock Get-ExmitReparseTag { $null }
        Get-ExmitReparseKind (New-Object System.IO.FileInfo (Join-Path $Image 'fs/C/dedup/web.config')) | Should -Be 'link'
        Get-ExmitReparseKind (New-Object System.IO.FileInfo $Outside) | Should -Be 'none'
    }

    It 'compiles the FindFirstFile wrapper (and reads tag 0 for a plain file on Windows)' {
        if (-not ('Exmit.ReparseTag' -as [type])) { Add-Type -TypeDefinition $ExmitReparseTagSource }
        'Exmit.ReparseTag' -as [type] | Should -Not -BeNullOrEmpty
        if ([System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Win32NT) { Get-ExmitReparseTag -Path $Outside | Should -Be 0 }
    }

    It 'reads a deduplicated file as the file it is (not refused as a link, not skipped as absent)' {
        Mock Get-ExmitReparseTag { [long]2147483667 }
        $result = Read-ExmitImageFiles -Path $Image -Paths @('C:\dedup\web.config')
        (ConvertFrom-TestData $result.files[0].data) | Should -Match 'deduplicated'
    }

    It 'still refuses a symbolic link out of the image' {
        Mock Get-ExmitReparseTag { [long]2684354572 }
        (Get-RequestError { Read-ExmitImageFiles -Path $Image -Paths @('C:\dedup\web.config') }).message | Should -Match 'outside the image'
    }
}

Describe 'Files open for writing elsewhere' {
    It 'reads every file through Read-ExmitFileBytes (FileShare ReadWrite and Delete): no other way of reading a file in the engine' {
        $pattern = '\[System\.IO\.File\]::(ReadAll\w+|Open\w*)\(|FileAccess\]::Read\b|Get-Content|Import-Clixml|OpenText'
        $offenders = foreach ($source in $EngineSources) {
            $lines = [System.IO.File]::ReadAllLines($source)
            for ($index = 0; $index -lt $lines.Count; $index++) {
                if ($lines[$index] -match $pattern) { '{0}: {1}' -f (Split-Path -Leaf $source), $lines[$index].Trim() }
            }
        }
        @($offenders) | Should -Be @('helpers.ps1: $stream = [System.IO.FileStream]::new($info.FullName, [System.IO.FileMode]::Open, [System.IO.FileAccess]::Read, $share)')
        # ... and that one line is Read-ExmitFileBytes's own, with the sharing it asks for.
        (Get-Command Read-ExmitFileBytes).Definition | Should -Match ([regex]::Escape('$stream = [System.IO.FileStream]::new($info.FullName, [System.IO.FileMode]::Open, [System.IO.FileAccess]::Read, $share)'))
        (Get-Command Read-ExmitFileBytes).Definition | Should -Match '\[System\.IO\.FileShare\]::ReadWrite -bor \[System\.IO\.FileShare\]::Delete'
    }

    It 'reads a file another handle holds open for writing (as appcmd and IIS Manager do), for readFiles, gather and the live target' {
        $path = Join-Path $Image 'fs/C/Windows/System32/inetsrv/config/applicationHost.config'
        $share = [System.IO.FileShare]::ReadWrite -bor [System.IO.FileShare]::Delete
        $writer = [System.IO.FileStream]::new($path, [System.IO.FileMode]::Open, [System.IO.FileAccess]::ReadWrite, $share)
        try {
            (ConvertFrom-TestData (Read-ExmitImageFiles -Path $Image -Paths @('C:\Windows\System32\inetsrv\config\applicationHost.config')).files[0].data) | Should -Match '<configuration>'
            (Get-ExmitImageFacts -Path $Image).applicationHost.sha256 | Should -Be (Get-TestFileSha256 $path)
            (Get-ExmitFileBytes -Path $path).Length | Should -Be $writer.Length
        } finally {
            $writer.Dispose()
        }
    }

    It 'refuses a file that is over the limit, as before' {
        $e = Get-RequestError { Read-ExmitFileBytes -Path (Get-Fixture 'applicationHost.config') -MaxBytes 10 -DisplayName 'applicationHost.config' -Kind environment }
        $e.kind | Should -Be 'environment'
        $e.message | Should -Match '^applicationHost\.config: larger than the limit of 10 bytes \(\d+ bytes\)$'
    }
}
