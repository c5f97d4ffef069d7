# scripts/check-ps51.ps1 flags each PowerShell 7-only construct and passes the engine.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:CheckPath = Join-Path $RepoRoot 'scripts/check-ps51.ps1'

    function Invoke-Check {
        param([string]$Text)
        $file = Join-Path $TestDrive ('case-' + [guid]::NewGuid() + '.ps1')
        [System.IO.File]::WriteAllText($file, $Text, (New-Object System.Text.UTF8Encoding $false))
        $output = & $PwshPath -NoProfile -NonInteractive -File $CheckPath -Path $file
        return [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output -join "`n"); File = $file }
    }
}

Describe 'check-ps51' {
    It 'flags <Name>' -ForEach @(
        @{ Name = 'a ternary'; Code = '$a = $true ? 1 : 2'; Expect = 'ternary' }
        @{ Name = 'a pipeline chain'; Code = 'Get-Date && Get-Date'; Expect = 'pipeline chain' }
        @{ Name = 'null-coalescing'; Code = '$b = $null ?? 1'; Expect = 'null-coalescing operator' }
        @{ Name = 'null-coalescing assignment'; Code = '$c ??= 1'; Expect = 'null-coalescing assignment' }
        @{ Name = 'null-conditional member access'; Code = '$n = ${d}?.Name'; Expect = 'null-conditional' }
        @{ Name = 'null-conditional index'; Code = '$n = ${d}?[0]'; Expect = 'null-conditional' }
        @{ Name = 'ForEach-Object -Parallel'; Code = '1..2 | ForEach-Object -Parallel { $_ }'; Expect = 'Parallel' }
        @{ Name = 'a clean block'; Code = 'function f { process { } clean { } }'; Expect = 'clean' }
        @{ Name = 'ConvertFrom-Json -AsHashtable'; Code = '''{}'' | ConvertFrom-Json -AsHashtable'; Expect = 'AsHashtable' }
        @{ Name = 'ConvertFrom-Json -Depth'; Code = '''{}'' | ConvertFrom-Json -Depth 5'; Expect = 'Depth' }
        @{ Name = 'Join-Path with three paths'; Code = 'Join-Path a b c'; Expect = 'Join-Path' }
        @{ Name = 'a non-ASCII character'; Code = ('$s = ''caf' + [char]0xE9 + ''''); Expect = 'non-ASCII' }
    ) {
        $result = Invoke-Check -Text ("Set-StrictMode -Version Latest`n" + $Code + "`n")
        $result.ExitCode | Should -Be 1
        $result.Output | Should -Match ([regex]::Escape($result.File + ':2:'))
        $result.Output | Should -Match $Expect
    }

    It 'passes code that Windows PowerShell 5.1 runs' {
        $result = Invoke-Check -Text ('$a = if ($true) { 1 } else { 2 }' + "`n" + '$h = @{}; $x = $h.a' + "`n" + 'Join-Path a b' + "`n" + '@(1,2) | Group-Object -AsHashTable' + "`n")
        $result.Output | Should -Match 'no PowerShell 7-only syntax'
        $result.ExitCode | Should -Be 0
    }

    It 'passes the engine, the scripts and these tests' {
        $output = & $PwshPath -NoProfile -NonInteractive -File $CheckPath
        $LASTEXITCODE | Should -Be 0 -Because ($output -join "`n")
    }

    It 'checks the engine sources and the built engine' {
        $output = & $PwshPath -NoProfile -NonInteractive -File $CheckPath -Path (Join-Path $RepoRoot 'engine')
        $LASTEXITCODE | Should -Be 0 -Because ($output -join "`n")
        ($output -join "`n") | Should -Match ('{0} file\(s\) checked' -f ($EngineSources.Count + 1))
    }

    It 'checks the engine by default' {
        $output = & $PwshPath -NoProfile -NonInteractive -File $CheckPath -Path (Join-Path $RepoRoot 'engine/exmit-engine.ps1')
        $LASTEXITCODE | Should -Be 0
        ($output -join "`n") | Should -Match '1 file\(s\) checked'
    }
}
