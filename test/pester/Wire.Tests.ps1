# The wire format of docs/architecture.md: ids on every answer, exit answered and then a clean exit 0,
# events before their answer, error kinds kept, files as exact bytes + SHA-256, the request table.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    foreach ($engineSource in $EngineSources) { . $engineSource -NoRun }

    function Wait-TestEngine {
        <# Waits for the child to exit on its own (stdin still open), then returns its lines and exit code. #>
        param($Engine, [int]$TimeoutMs = 60000)
        $exited = $Engine.Process.WaitForExit($TimeoutMs)
        if (-not $exited) { $Engine.Process.Kill() }
        $Engine.Process.WaitForExit()
        $Engine.StdoutTask.Wait()
        try { $Engine.Stdin.Close() } catch { Write-Verbose 'stdin already closed' }
        $text = (New-Object System.Text.UTF8Encoding $false).GetString($Engine.Stdout.ToArray())
        return [pscustomobject]@{
            ExitedByItself = $exited
            ExitCode       = $Engine.Process.ExitCode
            Lines          = @($text -split "`n" | Where-Object { $_ -ne '' })
            Stderr         = $Engine.StderrTask.Result
        }
    }

    function Get-LineError {
        <# The error object of the answer to one request line (in-process). #>
        param([string]$Line)
        return ((Invoke-ExmitLine -Line $Line).Json | ConvertFrom-Json)
    }

    # An image whose fs/ holds a UTF-16LE file with a BOM and a UTF-8 file with a BOM and CRLF.
    $script:Image = New-TestImage -Root (Join-Path $TestDrive 'image') -ServicesFixture 'GetServiceMitigation.xml'
    $folder = Join-Path $Image 'fs/C/inetpub/wwwroot'
    $null = New-Item -ItemType Directory -Force -Path $folder
    $script:Utf16Path = Join-Path $folder 'utf16.config'
    $script:Utf8Path = Join-Path $folder 'web.config'
    $text = "<?xml version=`"1.0`"?>`r`n<configuration>`r`n  <!-- caf" + [char]0xE9 + " -->`r`n</configuration>`r`n"
    [System.IO.File]::WriteAllText($Utf16Path, $text, (New-Object System.Text.UnicodeEncoding $false, $true))
    [System.IO.File]::WriteAllText($Utf8Path, $text, (New-Object System.Text.UTF8Encoding $true))
}

Describe 'exit' {
    BeforeAll {
        $imageJson = ConvertTo-Json -InputObject $Image -Compress
        $engine = Start-TestEngineProcess -ScriptPath $EnginePath
        $engine.Stdin.WriteLine('{"id":1,"op":"preflight"}')
        $engine.Stdin.WriteLine('{"id":2,"op":"readFiles","target":{"kind":"image","path":' + $imageJson + '},"paths":["C:\\inetpub\\wwwroot\\utf16.config","c:\\INETPUB\\wwwroot\\web.config","C:\\inetpub\\none.config"]}')
        $engine.Stdin.WriteLine('{"id":3,"op":"exit"}')
        # stdin is NOT closed: the engine must leave on exit, not at end of input.
        $script:Run = Wait-TestEngine -Engine $engine
        $script:Answers = @($Run.Lines | ForEach-Object { $_ | ConvertFrom-Json })
    }

    It 'answers exit with its id and an empty result, then exits 0 by itself' {
        $Run.ExitedByItself | Should -BeTrue -Because $Run.Stderr
        $Run.ExitCode | Should -Be 0
        $Run.Lines[$Run.Lines.Count - 1] | Should -Be '{"id":3,"ok":true,"result":{}}'
        ($Answers | ForEach-Object { $_.id }) -join ',' | Should -Be '1,2,3'
    }

    It 'returns the exact bytes of a UTF-16LE file with a BOM and of a UTF-8 file with a BOM and CRLF, with their SHA-256' {
        $files = $Answers[1].result.files
        $files.Count | Should -Be 3
        $files[0].data | Should -Be ([System.Convert]::ToBase64String([System.IO.File]::ReadAllBytes($Utf16Path)))
        $files[0].sha256 | Should -Be (Get-TestFileSha256 $Utf16Path)
        [System.Convert]::FromBase64String($files[0].data)[0..1] | Should -Be @(0xFF, 0xFE)
        $files[1].data | Should -Be ([System.Convert]::ToBase64String([System.IO.File]::ReadAllBytes($Utf8Path)))
        $files[1].sha256 | Should -Be (Get-TestFileSha256 $Utf8Path)
        $bytes = [System.Convert]::FromBase64String($files[1].data)
        $bytes[0..2] | Should -Be @(0xEF, 0xBB, 0xBF)
        ([System.Text.Encoding]::ASCII.GetString($bytes)) | Should -Match "`r`n"
        $files[1].sha256 | Should -Match '^[0-9a-f]{64}$'
        $files[2].data | Should -BeNullOrEmpty
        $files[2].sha256 | Should -BeNullOrEmpty
    }

    It 'answers a request without a numeric id with id null, and still exits on an exit without one' {
        $engine = Start-TestEngineProcess -ScriptPath $EnginePath
        $engine.Stdin.WriteLine('{"id":"a","op":"preflight"}')
        $engine.Stdin.WriteLine('{"op":"exit"}')
        $run = Wait-TestEngine -Engine $engine
        $run.ExitedByItself | Should -BeTrue
        $run.ExitCode | Should -Be 0
        $run.Lines.Count | Should -Be 2
        foreach ($line in $run.Lines) {
            $answer = $line | ConvertFrom-Json
            $answer.id | Should -BeNullOrEmpty
            $answer.ok | Should -BeFalse
            $answer.error.kind | Should -Be 'input'
            $answer.error.message | Should -Match '"id"'
        }
    }
}

Describe 'the engine at start' {
    It 'imports PowerShell 7''s command modules from their assemblies, so the first cmdlet call searches no module path' {
        $probe = ". '{0}' -NoRun; `$null = ConvertTo-Json -InputObject 1; (Get-Command ConvertTo-Json).ModuleName; (Get-Command Join-Path).ModuleName; (Get-Command Get-ExecutionPolicy).ModuleName; @(Get-Module | Where-Object Name -like 'Microsoft.PowerShell.*' | Sort-Object Name | ForEach-Object Name) -join ','" -f $EnginePath
        $lines = @(& $PwshPath -NoProfile -NonInteractive -Command $probe)
        $LASTEXITCODE | Should -Be 0
        if ($PSVersionTable.PSEdition -eq 'Core') {
            # Imported from an assembly, a module is named after it.
            $lines[0] | Should -BeLike 'dynamic_code_module_Microsoft.PowerShell.Commands.Utility, *'
            $lines[1] | Should -BeLike 'dynamic_code_module_Microsoft.PowerShell.Commands.Management, *'
            $lines[2] | Should -BeLike 'dynamic_code_module_Microsoft.PowerShell.Security, *'
            # Nothing came through auto-loading (Microsoft.PowerShell.Utility and the like).
            $lines[3] | Should -Be ''
        } else {
            $lines[0] | Should -Be 'Microsoft.PowerShell.Utility'
        }
    }
}

Describe 'progress events' {
    It 'come before the answer, with the id of the request they belong to' {
        # The built engine with its live wrappers replaced by the captures (as Live.Tests.ps1 mocks them).
        $fixtures = $FixtureDir.Replace("'", "''")
        $driver = Join-Path $TestDrive 'driver.ps1'
        $lines = @(
            ". '{0}' -NoRun" -f $EnginePath.Replace("'", "''")
            "function Get-ExmitEnvironment { Import-Clixml -LiteralPath '$fixtures/environment.xml' }"
            "function Get-ExmitRegistryKeys { Import-Clixml -LiteralPath '$fixtures/registry.xml' }"
            "function Get-ExmitServices { param([string[]]`$Name) Import-Clixml -LiteralPath '$fixtures/GetServiceMitigation.xml' }"
            "function Get-ExmitOperatingSystem { Import-Clixml -LiteralPath '$fixtures/os.xml' }"
            "function Get-ExmitAppPools { Import-Clixml -LiteralPath '$fixtures/apppools.xml' }"
            'function Get-ExmitFileVersion { param([string]$Path) $null }'
            'function Get-ExmitFileBytes { param([string]$Path) $null }'
            "function Get-ExmitIisPhysicalPaths { 'C:\inetpub\wwwroot'; 'D:\Exchange\FrontEnd\HttpProxy\owa' }"
            'function Find-ExmitWebConfigFiles { param([string]$Directory, [int]$Limit) , @() }'
            'Start-ExmitEngine'
            'exit 0'
        )
        [System.IO.File]::WriteAllText($driver, ($lines -join "`n"), (New-Object System.Text.UTF8Encoding $false))
        $out = (Join-Path $TestDrive 'collected') | ConvertTo-Json -Compress
        $engine = Start-TestEngineProcess -ScriptPath $driver
        $engine.Stdin.WriteLine('{"id":4,"op":"preflight"}')
        $engine.Stdin.WriteLine('{"id":5,"op":"collect","target":{"kind":"local"},"out":' + $out + '}')
        $engine.Stdin.WriteLine('{"id":6,"op":"exit"}')
        $run = Wait-TestEngine -Engine $engine
        $run.ExitCode | Should -Be 0 -Because $run.Stderr
        $messages = @($run.Lines | ForEach-Object { $_ | ConvertFrom-Json })
        $messages[0].id | Should -Be 4
        $messages[0].ok | Should -BeTrue
        $events = @($messages | Where-Object { $null -ne $_.PSObject.Properties['event'] })
        $events.Count | Should -BeGreaterThan 2
        foreach ($event in $events) {
            $event.id | Should -Be 5
            $event.event.kind | Should -Be 'progress'
            $event.event.message | Should -Match '^collect: '
        }
        @($events | Where-Object { $_.event.message -like '*web.config files below D:\Exchange\FrontEnd\HttpProxy\owa' }).Count | Should -Be 1
        # Every event of request 5 comes after the answer to 4 and before the answer to 5.
        $answer5 = [array]::IndexOf(@($messages | ForEach-Object { ($_.id -eq 5) -and ($null -ne $_.PSObject.Properties['ok']) }), $true)
        $answer5 | Should -Be ($messages.Count - 2)
        $messages[$answer5].ok | Should -BeTrue -Because ($run.Lines[$answer5])
        for ($i = 1; $i -lt $answer5; $i++) { $messages[$i].PSObject.Properties['event'] | Should -Not -BeNullOrEmpty }
        $messages[$messages.Count - 1].id | Should -Be 6
    }
}

Describe 'error kinds' {
    It 'keeps the kind <_> from the engine to the answer' -ForEach @('image', 'input', 'environment', 'policy', 'lock', 'conflict', 'step', 'fault', 'internal') {
        $kind = $_
        Mock Get-ExmitPreflight { throw (New-ExmitError -Kind $kind -File 'C:\x.lock' -Message ('a {0} error' -f $kind)) }
        $answer = Get-LineError '{"id":7,"op":"preflight"}'
        $answer.id | Should -Be 7
        $answer.ok | Should -BeFalse
        $answer.error.kind | Should -Be $kind
        $answer.error.message | Should -Be ('a {0} error' -f $kind)
        $answer.error.file | Should -Be 'C:\x.lock'
    }

    It 'answers a plain exception, or an unknown kind, as internal' {
        Mock Get-ExmitPreflight { throw 'something broke' }
        (Get-LineError '{"id":8,"op":"preflight"}').error.kind | Should -Be 'internal'
        Mock Get-ExmitPreflight { $e = New-ExmitError -Kind input -Message 'x'; $e.Data['exmitKind'] = 'weird'; throw $e }
        (Get-LineError '{"id":9,"op":"preflight"}').error.kind | Should -Be 'internal'
    }

    It 'refuses a kind that the protocol does not have' {
        { New-ExmitError -Kind 'oops' -Message 'x' } | Should -Throw
    }
}

Describe 'the request table' {
    It 'rejects <Line> naming the op and the field' -ForEach @(
        @{ Line = '{"id":1,"op":"readFiles","target":{"kind":"local"}}'; Message = 'readFiles: "paths" is required (an array of strings)' }
        @{ Line = '{"id":1,"op":"readFiles","paths":"C:\\x"}'; Message = 'readFiles: "paths" must be an array of strings' }
        @{ Line = '{"id":1,"op":"readFiles","paths":["C:\\x",2]}'; Message = 'readFiles: "paths" must be an array of strings' }
        @{ Line = '{"id":1,"op":"gather","services":"W3SVC"}'; Message = 'gather: "services" must be an array of strings' }
        @{ Line = '{"id":1,"op":"gather","target":"local"}'; Message = 'gather: "target" must be an object {"kind":"local"} or {"kind":"image","path":"..."}' }
        @{ Line = '{"id":1,"op":"gather","target":{"kind":"remote"}}'; Message = 'gather: "target.kind" must be local or image' }
        @{ Line = '{"id":1,"op":"gather","target":{"kind":"image"}}'; Message = 'gather: "target.path" must be the image folder for an image target' }
        @{ Line = '{"id":1,"op":"collect"}'; Message = 'collect: "out" is required (a string)' }
        @{ Line = '{"id":1,"op":"collect","out":5}'; Message = 'collect: "out" must be a string' }
        @{ Line = '{"id":1,"op":"collect","out":"C:\\x","target":{"kind":"image","path":"/x"}}'; Message = 'collect: "target.kind" must be local' }
        @{ Line = '{"id":1,"op":"frobnicate"}'; Message = 'unknown op: frobnicate' }
        @{ Line = '{"id":1,"op":"Gather"}'; Message = 'unknown op: Gather' }
        @{ Line = '{"id":1}'; Message = 'the request has no "op"' }
    ) {
        Mock Read-ExmitImageFiles { throw 'must not be called' }
        Mock Read-ExmitLocalFiles { throw 'must not be called' }
        Mock Get-ExmitImageFacts { throw 'must not be called' }
        Mock Get-ExmitLocalFacts { throw 'must not be called' }
        Mock Invoke-ExmitCollect { throw 'must not be called' }
        $answer = Get-LineError $Line
        $answer.ok | Should -BeFalse
        $answer.id | Should -Be 1
        $answer.error.kind | Should -Be 'input'
        $answer.error.message | Should -Be $Message
    }

    It 'checks Windows-only ops and base64 fields before anything runs' {
        Mock Test-ExmitWindows { $true }
        Mock New-ExmitSecureFile { throw 'must not be called' }
        $answer = Get-LineError '{"id":2,"op":"createSecure","path":"C:\\k","kind":"file","sddl":"D:P","data":"not base64!"}'
        $answer.error.kind | Should -Be 'input'
        $answer.error.message | Should -Be 'createSecure: "data" must be a base64 string'
        (Get-LineError '{"id":2,"op":"createSecure","kind":"file","sddl":"D:P"}').error.message | Should -Be 'createSecure: "path" is required (a string)'
        (Get-LineError '{"id":2,"op":"security","paths":[""]}').error.message | Should -BeLike 'security: "paths" must not be empty*'
        Should -Invoke New-ExmitSecureFile -Times 0 -Exactly
    }

    It 'names a known type for every field of every op' {
        foreach ($op in $ExmitRequestTable.Keys) {
            foreach ($field in $ExmitRequestTable[$op].Fields) {
                $ExmitFieldTypeWords.ContainsKey($field.Type) | Should -BeTrue -Because ('{0}.{1}' -f $op, $field.Name)
            }
        }
    }
}

Describe 'Constrained language mode' {
    It 'is detected by the first statement and reported in plain words on stderr, in the words src/powershell/door.ts maps' {
        # Application control runs unapproved scripts in ConstrainedLanguage; a parent session in that mode does the same to the script it calls.
        $wrapper = Join-Path $TestDrive 'constrained.ps1'
        [System.IO.File]::WriteAllText($wrapper, ("`$ExecutionContext.SessionState.LanguageMode = 'ConstrainedLanguage'`n& '{0}'`nexit `$LASTEXITCODE`n" -f $EnginePath.Replace("'", "''")))
        $engine = Start-TestEngineProcess -ScriptPath $wrapper
        $engine.Stdin.WriteLine('{"id":1,"op":"preflight","target":{"kind":"local"}}')
        $done = Wait-TestEngine -Engine $engine
        # PowerShell 7 may colour and wrap an error record ('| ' at each line start): compare the words.
        $stderr = ($done.Stderr -replace '\x1b\[[0-9;]*m', '') -replace '[\s|]+', ' '
        $done.ExitedByItself | Should -BeTrue
        $done.ExitCode | Should -Be 1
        @($done.Lines).Count | Should -Be 0
        $stderr | Should -Match 'exmit-engine: PowerShell runs this script in ConstrainedLanguage mode \(not FullLanguage\), so the engine cannot run: application control \(WDAC or AppLocker\)'
        $stderr | Should -Match 'ConstrainedLanguage|language mode'
        $stderr | Should -Not -Match 'Method invocation|Cannot create type'
    }
}
