# The stdin/stdout protocol, end to end: the engine as a child PowerShell process.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Image = New-TestImage -Root (Join-Path $TestDrive 'image') -ServicesFixture 'GetServiceMitigation.xml'
    $imageJson = ConvertTo-Json -InputObject $Image -Compress
    $script:Run = Invoke-TestEngine -Lines @(
        '{"id":1,"op":"preflight","target":{"kind":"local"}}',
        ('{"id":2,"op":"gather","target":{"kind":"image","path":' + $imageJson + '}}'),
        ('{"id":3,"op":"readFiles","target":{"kind":"image","path":' + $imageJson + '},"paths":["C:\\WINDOWS\\system32\\inetsrv\\config\\applicationhost.config"]}'),
        '{"id":4,"op":"frobnicate","target":{"kind":"local"}}',
        '{"id":5,"op":',
        '',
        ('{"id":6,"op":"readFiles","target":{"kind":"image","path":' + $imageJson + '},"paths":["C:\\inetpub\\..\\..\\x"]}'),
        '{"id":7,"op":"exit"}',
        '{"id":8,"op":"preflight","target":{"kind":"local"}}'
    )
    $script:Responses = @($Run.Lines | ForEach-Object { $_ | ConvertFrom-Json })
}

Describe 'engine over stdin/stdout' {
    It 'answers each request with exactly one JSON line and stops at exit' {
        $Run.ExitCode | Should -Be 0
        $Run.Lines.Count | Should -Be 7
        ($Responses | ForEach-Object { $_.id }) -join ',' | Should -Be '1,2,3,4,,6,7'
        $Run.Bytes[0] | Should -Be ([byte][char]'{')
        $Run.Raw | Should -Not -Match "`r"
    }

    It 'answers preflight' {
        $Responses[0].ok | Should -BeTrue
        $Responses[0].result.psVersion | Should -Not -BeNullOrEmpty
        $Responses[0].result.languageMode | Should -Be 'FullLanguage'
    }

    It 'answers gather on an image with arrays kept as arrays' {
        $Responses[1].ok | Should -BeTrue
        $Responses[1].result.exsetup.version | Should -Be '15.2.986.5'
        $Run.Lines[1] | Should -Match '"services":\[\{"name":"MSExchangeMitigation"'
        $Run.Lines[1] | Should -Match '"missing":\[\]'
        (ConvertFrom-TestData $Responses[1].result.applicationHost.data) | Should -Match '<configuration>'
    }

    It 'answers readFiles' {
        $Responses[2].result.files.Count | Should -Be 1
        (ConvertFrom-TestData $Responses[2].result.files[0].data) | Should -Match '<configuration>'
    }

    It 'answers an unknown op with ok:false kind input' {
        $Responses[3].ok | Should -BeFalse
        $Responses[3].error.kind | Should -Be 'input'
        $Responses[3].error.message | Should -Match 'unknown op'
        $Responses[3].error.file | Should -BeNullOrEmpty
    }

    It 'answers a malformed JSON line with ok:false kind input and id null' {
        $Responses[4].ok | Should -BeFalse
        $Responses[4].error.kind | Should -Be 'input'
        $Responses[4].id | Should -BeNullOrEmpty
    }

    It 'refuses a .. path' {
        $Responses[5].ok | Should -BeFalse
        $Responses[5].error.kind | Should -Be 'input'
    }

    It 'answers exit and does not read further' {
        $Responses[6].ok | Should -BeTrue
        $Responses[6].id | Should -Be 7
    }

    It 'exits 0 at end of input without exit, and reports image errors naming the file' {
        $bad = Join-Path $TestDrive 'bad-image'
        $null = New-Item -ItemType Directory -Path $bad
        [System.IO.File]::WriteAllText((Join-Path $bad 'registry.xml'), '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
        $run = Invoke-TestEngine -Lines @('{"id":9,"op":"gather","target":{"kind":"image","path":' + (ConvertTo-Json -InputObject $bad -Compress) + '}}')
        $run.ExitCode | Should -Be 0
        $run.Lines.Count | Should -Be 1
        $response = $run.Lines[0] | ConvertFrom-Json
        $response.id | Should -Be 9
        $response.ok | Should -BeFalse
        $response.error.kind | Should -Be 'image'
        $response.error.file | Should -Be 'registry.xml'
    }
}
