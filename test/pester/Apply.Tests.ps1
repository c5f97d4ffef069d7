# apply / rollback in the engine: lock, unlock, readState, readBlob and execute on real copies of a server
# image, live steps through mocked wrappers fed with real captures, and a crash of a real engine process.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    foreach ($engineSource in $EngineSources) { . $engineSource -NoRun }
    $script:Operations = Get-ExmitApplyOperations
    $script:SourceImage = Join-Path $RepoRoot 'test/fixtures/images/e19-cu12-oct22su-eems-rule'
    $script:AppHostPath = 'C:\WINDOWS\system32\inetsrv\config\applicationhost.config'
    $script:AppHostFile = 'fs/C/Windows/System32/inetsrv/config/applicationHost.config'
    $script:WebConfigPath = 'C:\inetpub\wwwroot\web.config'
    $script:WebConfigFile = 'fs/C/inetpub/wwwroot/web.config'
    $script:NewFilePath = 'C:\inetpub\wwwroot\exmit-test.txt'
    $script:NewFileFile = 'fs/C/inetpub/wwwroot/exmit-test.txt'
    $script:Utf8 = New-Object System.Text.UTF8Encoding $false

    function New-ApplyImage {
        <# A fresh copy of the 2019 image in TestDrive. #>
        param([string]$Name = ('image-' + [guid]::NewGuid().ToString('N')))
        $path = Join-Path $TestDrive $Name
        Copy-Item -LiteralPath $SourceImage -Destination $path -Recurse
        return $path
    }

    function Invoke-ApplyOp {
        <# Runs an apply operation the way the dispatcher will: the request as parsed JSON. #>
        param([string]$Op, [hashtable]$Fields)
        $json = ConvertTo-Json -InputObject $Fields -Depth 20 -Compress
        return (& $Operations[$Op].Run (ConvertFrom-Json -InputObject $json))
    }

    function Get-ApplyError {
        <# The protocol error object (with details) of what a script block throws; fails the test when it does not throw. #>
        param([scriptblock]$Script)
        try {
            & $Script
        } catch {
            $result = ConvertTo-ExmitErrorObject $_
            $result.details = Get-ExmitErrorDetails $_
            return $result
        }
        throw 'expected an error'
    }

    function Get-ImageTarget {
        param([string]$Image)
        return @{ kind = 'image'; path = $Image }
    }

    function Get-TestSha {
        param([byte[]]$Bytes)
        return (Get-ExmitSha256Hex -Bytes $Bytes)
    }

    function Get-ImageFile {
        param([string]$Image, [string]$Relative)
        return (Join-Path $Image $Relative)
    }

    function Get-ImageSnapshot {
        <# Every file of the image outside .exmit, by relative path, with its sha256. #>
        param([string]$Image)
        $snapshot = [ordered]@{}
        $root = (Resolve-Path -LiteralPath $Image).ProviderPath
        foreach ($file in (Get-ChildItem -LiteralPath $root -Recurse -File -Force | Sort-Object FullName)) {
            $relative = $file.FullName.Substring($root.Length + 1)
            if ($relative.StartsWith('.exmit')) { continue }
            $snapshot[$relative] = Get-TestSha ([System.IO.File]::ReadAllBytes($file.FullName))
        }
        return $snapshot
    }

    function ConvertTo-SnapshotText {
        param($Snapshot)
        return (($Snapshot.Keys | ForEach-Object { '{0}={1}' -f $_, $Snapshot[$_] }) -join "`n")
    }

    function Read-Journal {
        <# The journal's lines as objects (read while it may still be open). #>
        param([string]$Image, [string]$RunId)
        $path = Join-Path $Image ('.exmit/journal/' + $RunId + '.jsonl')
        $stream = New-Object System.IO.FileStream $path, ([System.IO.FileMode]::Open), ([System.IO.FileAccess]::Read), ([System.IO.FileShare]::ReadWrite)
        try {
            $reader = New-Object System.IO.StreamReader $stream, $Utf8
            $text = $reader.ReadToEnd()
        } finally {
            $stream.Dispose()
        }
        return , @($text -split "`n" | Where-Object { $_ -ne '' } | ForEach-Object { ConvertFrom-Json -InputObject $_ })
    }

    function Get-JournalShape {
        <# "begin,intent 0,done 0,...,end undone": the journal's line kinds, steps and outcome. #>
        param([object[]]$Lines)
        return ((@($Lines | ForEach-Object {
                        if ($_.t -eq 'begin') { 'begin' }
                        elseif ($_.t -eq 'end') { 'end ' + $_.outcome }
                        else { '{0} {1}' -f $_.t, $_.step }
                    })) -join ',')
    }

    function New-FileStep {
        param([string]$Path, $Before, $AfterBytes)
        $after = $null
        if ($null -ne $AfterBytes) { $after = @{ data = [System.Convert]::ToBase64String([byte[]]$AfterBytes); sha256 = (Get-TestSha ([byte[]]$AfterBytes)) } }
        return [ordered]@{ kind = 'file'; path = $Path; before = $Before; after = $after }
    }

    function New-ThreeSteps {
        <# Write applicationHost.config, delete wwwroot/web.config, create wwwroot/exmit-test.txt. #>
        param([string]$Image)
        $appHostBytes = [System.IO.File]::ReadAllBytes((Get-ImageFile $Image $AppHostFile))
        $webConfigBytes = [System.IO.File]::ReadAllBytes((Get-ImageFile $Image $WebConfigFile))
        $script:NewAppHostBytes = [byte[]]($appHostBytes + $Utf8.GetBytes("<!-- exmit -->`r`n"))
        $script:NewFileBytes = [byte[]](0xEF, 0xBB, 0xBF, 0x61, 0x0D, 0x0A, 0x00, 0xFF)
        return , @(
            (New-FileStep -Path $AppHostPath -Before (Get-TestSha $appHostBytes) -AfterBytes $NewAppHostBytes),
            (New-FileStep -Path $WebConfigPath -Before (Get-TestSha $webConfigBytes) -AfterBytes $null),
            (New-FileStep -Path $NewFilePath -Before $null -AfterBytes $NewFileBytes)
        )
    }

    function Invoke-Execute {
        param([string]$Image, [string]$RunId, [object[]]$Steps, $Fault = $null, $Ledger = $null)
        return (Invoke-ApplyOp 'execute' @{
                target = (Get-ImageTarget $Image); runId = $RunId; mode = 'apply'; catalogSerial = 7
                plan = @{ mitigations = @('proxynotshell-autodiscover'); note = 'kept as is' }
                steps = $Steps; ledger = $Ledger; fault = $Fault
            })
    }

    function Start-TestProcess {
        <# A real child PowerShell process that runs Command. #>
        param([string]$Command)
        $info = New-Object System.Diagnostics.ProcessStartInfo
        $info.FileName = $PwshPath
        $info.Arguments = '-NoProfile -NonInteractive -Command "' + $Command + '"'
        $info.UseShellExecute = $false
        return [System.Diagnostics.Process]::Start($info)
    }

    function Write-LockFile {
        param([string]$Image, [string]$Text)
        $null = New-Item -ItemType Directory -Force -Path (Join-Path $Image '.exmit')
        [System.IO.File]::WriteAllText((Join-Path $Image '.exmit/lock'), $Text)
    }

    $script:SavedHooks = [System.Environment]::GetEnvironmentVariable('EXMIT_TEST_HOOKS')
    [System.Environment]::SetEnvironmentVariable('EXMIT_TEST_HOOKS', '1')
}

AfterAll {
    [System.Environment]::SetEnvironmentVariable('EXMIT_TEST_HOOKS', $SavedHooks)
    Clear-ExmitHeldLocks
}

Describe 'lock and unlock' {
    AfterEach { Clear-ExmitHeldLocks }

    It 'takes a fresh lock with pid, host, runId and startedAt, and unlock removes it' {
        $image = New-ApplyImage
        $answer = Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $image); runId = '20261201T051500Z-1a2b' }
        $lockFile = Join-Path $image '.exmit/lock'
        $answer.lock | Should -Be ([System.IO.Path]::GetFullPath($lockFile))
        $answer.staleCleared | Should -BeNullOrEmpty
        $content = [System.IO.File]::ReadAllText($lockFile) | ConvertFrom-Json
        $content.pid | Should -Be $PID
        $content.host | Should -Be ([System.Environment]::MachineName)
        $content.runId | Should -Be '20261201T051500Z-1a2b'
        [string]$content.startedAt | Should -Not -BeNullOrEmpty
        (Invoke-ApplyOp 'unlock' @{ target = (Get-ImageTarget $image); runId = '20261201T051500Z-1a2b' }).released | Should -BeTrue
        Test-Path -LiteralPath $lockFile | Should -BeFalse
    }

    It 'refuses a lock held by a live process, naming the file, pid, run and start, and leaves it' {
        $image = New-ApplyImage
        $child = Start-TestProcess 'Start-Sleep -Seconds 120'
        try {
            $startedAt = [System.DateTime]::UtcNow.AddSeconds(5).ToString('yyyy-MM-ddTHH:mm:ss.fffZ')
            $text = '{"pid":' + $child.Id + ',"host":"' + [System.Environment]::MachineName + '","runId":"other-run","startedAt":"' + $startedAt + '"}'
            Write-LockFile $image $text
            $failure = Get-ApplyError { Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $image); runId = 'mine' } }
            $failure.kind | Should -Be 'lock'
            $failure.message | Should -BeLike ('*' + (Join-Path $image '.exmit/lock') + '*')
            $failure.message | Should -BeLike ('*pid ' + $child.Id + '*')
            $failure.message | Should -BeLike '*other-run*'
            $failure.message | Should -BeLike ('*' + $startedAt + '*')
            [System.IO.File]::ReadAllText((Join-Path $image '.exmit/lock')) | Should -Be $text
        } finally {
            $child.Kill()
            $child.WaitForExit()
        }
    }

    It 'clears the stale lock of a dead process and says whose it was' {
        $image = New-ApplyImage
        $child = Start-TestProcess 'exit 0'
        $child.WaitForExit()
        $text = '{"pid":' + $child.Id + ',"host":"' + [System.Environment]::MachineName + '","runId":"dead-run","startedAt":"2026-11-30T10:00:00.000Z"}'
        Write-LockFile $image $text
        $answer = Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $image); runId = 'mine' }
        $answer.staleCleared.pid | Should -Be $child.Id
        $answer.staleCleared.runId | Should -Be 'dead-run'
        $answer.staleCleared.startedAt | Should -Be '2026-11-30T10:00:00.000Z'
        ([System.IO.File]::ReadAllText((Join-Path $image '.exmit/lock')) | ConvertFrom-Json).runId | Should -Be 'mine'
    }

    It 'clears a malformed lock file' {
        $image = New-ApplyImage
        Write-LockFile $image '{"pid": "not a lock'
        $answer = Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $image); runId = 'mine' }
        $answer.staleCleared | Should -BeTrue
        ([System.IO.File]::ReadAllText((Join-Path $image '.exmit/lock')) | ConvertFrom-Json).pid | Should -Be $PID
    }

    It 'refuses to unlock a lock held by another run, and releases held locks at exit' {
        $image = New-ApplyImage
        $null = Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $image); runId = 'run-a' }
        (Get-ApplyError { Invoke-ApplyOp 'unlock' @{ target = (Get-ImageTarget $image); runId = 'run-b' } }).kind | Should -Be 'lock'
        Test-Path -LiteralPath (Join-Path $image '.exmit/lock') | Should -BeTrue
        Clear-ExmitHeldLocks
        Test-Path -LiteralPath (Join-Path $image '.exmit/lock') | Should -BeFalse
    }

    It 'refuses a run id that cannot name a journal' {
        $image = New-ApplyImage
        (Get-ApplyError { Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $image); runId = '../x' } }).kind | Should -Be 'input'
    }
}

Describe 'execute: file steps on an image' {
    BeforeEach {
        $script:Image = New-ApplyImage
        $script:Before = Get-ImageSnapshot $Image
        $null = Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $Image); runId = 'run-1' }
        $script:Steps = New-ThreeSteps $Image
    }
    AfterEach { Clear-ExmitHeldLocks }

    It 'refuses to run without holding the lock' {
        Clear-ExmitHeldLocks
        (Get-ApplyError { Invoke-Execute $Image 'run-1' $Steps }).kind | Should -Be 'lock'
        ConvertTo-SnapshotText (Get-ImageSnapshot $Image) | Should -Be (ConvertTo-SnapshotText $Before)
    }

    It 'writes, deletes and creates byte-exactly, journals each step in order, saves copies and the ledger' {
        $ledger = $Utf8.GetBytes('{"version":1}')
        $answer = Invoke-Execute $Image 'run-1' $Steps -Ledger @{ data = [System.Convert]::ToBase64String($ledger) }
        $answer.journal | Should -Be 'run-1.jsonl'
        @($answer.steps).Count | Should -Be 3
        $answer.steps[1].prior.sha256 | Should -Be $Steps[1].before
        $answer.steps[1].after.sha256 | Should -BeNullOrEmpty
        $answer.steps[2].prior.sha256 | Should -BeNullOrEmpty

        [System.IO.File]::ReadAllBytes((Get-ImageFile $Image $AppHostFile)) | Should -Be $NewAppHostBytes
        Test-Path -LiteralPath (Get-ImageFile $Image $WebConfigFile) | Should -BeFalse
        $created = [System.IO.File]::ReadAllBytes((Get-ImageFile $Image $NewFileFile))
        ([System.BitConverter]::ToString($created)) | Should -Be ([System.BitConverter]::ToString($NewFileBytes))
        [System.IO.File]::ReadAllBytes((Join-Path $Image '.exmit/ledger.json')) | Should -Be $ledger
        # Nothing else changed, and no temp file is left beside the targets.
        $after = Get-ImageSnapshot $Image
        @($after.Keys | Where-Object { $_ -like '*.tmp' }).Count | Should -Be 0
        $after.Count | Should -Be $Before.Count

        $lines = Read-Journal $Image 'run-1'
        Get-JournalShape $lines | Should -Be 'begin,intent 0,done 0,intent 1,done 1,intent 2,done 2,end done'
        $lines[0].runId | Should -Be 'run-1'
        $lines[0].mode | Should -Be 'apply'
        $lines[0].catalogSerial | Should -Be 7
        $lines[0].plan.note | Should -Be 'kept as is'
        $lines[0].steps[0].after.sha256 | Should -Be (Get-TestSha $NewAppHostBytes)
        $lines[0].steps[0].after.PSObject.Properties['data'] | Should -BeNullOrEmpty
        $lines[1].prior.sha256 | Should -Be $Steps[0].before
        $lines[2].after.sha256 | Should -Be (Get-TestSha $NewAppHostBytes)
        $raw = [System.IO.File]::ReadAllBytes((Join-Path $Image '.exmit/journal/run-1.jsonl'))
        $raw[0] | Should -Be ([byte][char]'{')
        $raw[$raw.Length - 1] | Should -Be 10

        foreach ($index in 0, 1) {
            $copy = Join-Path $Image ('.exmit/files/' + $Steps[$index].before)
            Get-TestSha ([System.IO.File]::ReadAllBytes($copy)) | Should -Be $Steps[$index].before
        }
    }

    It 'saves the prior copy and flushes the intent line before it changes the file' {
        $script:Observed = New-Object System.Collections.Generic.List[string]
        $script:RealWriteAtomic = ${function:Write-ExmitFileAtomic}
        Mock Write-ExmitFileAtomic {
            if ($Path -like '*applicationHost.config') {
                $lines = Read-Journal $Image 'run-1'
                $script:Observed.Add((Get-JournalShape $lines))
                $script:Observed.Add([string](Test-Path -LiteralPath (Join-Path $Image ('.exmit/files/' + $Steps[0].before))))
            }
            & $script:RealWriteAtomic -Path $Path -Bytes $Bytes
        }
        $null = Invoke-Execute $Image 'run-1' $Steps
        $Observed[0] | Should -Be 'begin,intent 0'
        $Observed[1] | Should -Be 'True'
    }

    It 'stops with a conflict and changes nothing when a file changed since the plan' {
        [System.IO.File]::AppendAllText((Get-ImageFile $Image $AppHostFile), ' ')
        $changed = Get-ImageSnapshot $Image
        $failure = Get-ApplyError { Invoke-Execute $Image 'run-1' $Steps }
        $failure.kind | Should -Be 'conflict'
        $failure.message | Should -BeLike ('*' + $AppHostPath + '*changed since the plan*')
        $failure.details.failedStep | Should -Be 0
        $failure.details.undone | Should -BeTrue
        ConvertTo-SnapshotText (Get-ImageSnapshot $Image) | Should -Be (ConvertTo-SnapshotText $changed)
        Get-JournalShape (Read-Journal $Image 'run-1') | Should -Be 'begin,end undone'
    }

    It 'undoes the first steps when a later one meets a conflict' {
        [System.IO.File]::WriteAllText((Get-ImageFile $Image $NewFileFile), 'someone else')
        $planned = Get-ImageSnapshot $Image
        $failure = Get-ApplyError { Invoke-Execute $Image 'run-1' $Steps }
        $failure.kind | Should -Be 'conflict'
        $failure.details.failedStep | Should -Be 2
        ConvertTo-SnapshotText (Get-ImageSnapshot $Image) | Should -Be (ConvertTo-SnapshotText $planned)
        Get-JournalShape (Read-Journal $Image 'run-1') | Should -Be 'begin,intent 0,done 0,intent 1,done 1,undone 1,undone 0,end undone'
    }

    It 'a fault <when> step <k> leaves every file byte-identical and the journal undone' -TestCases @(
        @{ k = 0; when = 'before'; shape = 'begin,end undone' }
        @{ k = 0; when = 'after'; shape = 'begin,intent 0,undone 0,end undone' }
        @{ k = 1; when = 'before'; shape = 'begin,intent 0,done 0,undone 0,end undone' }
        @{ k = 1; when = 'after'; shape = 'begin,intent 0,done 0,intent 1,undone 1,undone 0,end undone' }
        @{ k = 2; when = 'before'; shape = 'begin,intent 0,done 0,intent 1,done 1,undone 1,undone 0,end undone' }
        @{ k = 2; when = 'after'; shape = 'begin,intent 0,done 0,intent 1,done 1,intent 2,undone 2,undone 1,undone 0,end undone' }
    ) {
        param($k, $when, $shape)
        $failure = Get-ApplyError { Invoke-Execute $Image 'run-1' $Steps -Fault @{ step = $k; when = $when; kind = 'fail' } }
        $failure.kind | Should -Be 'fault'
        $failure.message | Should -BeLike ('step {0}/3 *' -f ($k + 1))
        $failure.details.failedStep | Should -Be $k
        $failure.details.undone | Should -BeTrue
        @($failure.details.undoFailures).Count | Should -Be 0
        ConvertTo-SnapshotText (Get-ImageSnapshot $Image) | Should -Be (ConvertTo-SnapshotText $Before)
        Get-JournalShape (Read-Journal $Image 'run-1') | Should -Be $shape
    }

    It 'refuses a fault when the engine runs without EXMIT_TEST_HOOKS=1' {
        [System.Environment]::SetEnvironmentVariable('EXMIT_TEST_HOOKS', $null)
        try {
            $failure = Get-ApplyError { Invoke-Execute $Image 'run-1' $Steps -Fault @{ step = 0; when = 'before'; kind = 'fail' } }
        } finally {
            [System.Environment]::SetEnvironmentVariable('EXMIT_TEST_HOOKS', '1')
        }
        $failure.kind | Should -Be 'input'
        $failure.message | Should -BeLike '*EXMIT_TEST_HOOKS*'
        Test-Path -LiteralPath (Join-Path $Image '.exmit/journal/run-1.jsonl') | Should -BeFalse
    }

    It 'reports undo-failed, naming the journal, when someone changed a file after the run wrote it' {
        Mock Invoke-ExmitFault -ParameterFilter { $Index -eq 2 -and $When -eq 'before' } {
            [System.IO.File]::AppendAllText((Get-ImageFile $Image $AppHostFile), '<!-- someone else -->')
            throw (New-ExmitApplyError -Kind fault -Message 'test fault at step 2 (before)')
        }
        $failure = Get-ApplyError { Invoke-Execute $Image 'run-1' $Steps }
        $failure.kind | Should -Be 'fault'
        $failure.details.undone | Should -BeFalse
        @($failure.details.undoFailures).Count | Should -Be 1
        $failure.details.undoFailures[0].index | Should -Be 0
        $failure.details.undoFailures[0].message | Should -BeLike '*changed by someone else*'
        $failure.message | Should -BeLike ('*' + (Join-Path $Image '.exmit/journal/run-1.jsonl') + '*')
        $failure.file | Should -Be ([System.IO.Path]::GetFullPath((Join-Path $Image '.exmit/journal/run-1.jsonl')))
        Get-JournalShape (Read-Journal $Image 'run-1') | Should -Be 'begin,intent 0,done 0,intent 1,done 1,undone 1,end undo-failed'
        # Step 1 was restored; the changed file was left as the other party made it.
        Get-TestSha ([System.IO.File]::ReadAllBytes((Get-ImageFile $Image $WebConfigFile))) | Should -Be $Steps[1].before
        [System.IO.File]::ReadAllText((Get-ImageFile $Image $AppHostFile)) | Should -BeLike '*<!-- someone else -->'
    }

    It 'reports undo-failed when restoring a file fails' {
        $script:RealWriteAtomic = ${function:Write-ExmitFileAtomic}
        $original = Get-TestSha ([System.IO.File]::ReadAllBytes((Get-ImageFile $Image $AppHostFile)))
        Mock Write-ExmitFileAtomic -ParameterFilter { $Path -like '*applicationHost.config' -and (Get-ExmitSha256Hex $Bytes) -eq $original } {
            throw [System.IO.IOException]::new('disk full')
        }
        $failure = Get-ApplyError { Invoke-Execute $Image 'run-1' $Steps -Fault @{ step = 2; when = 'before'; kind = 'fail' } }
        $failure.details.undone | Should -BeFalse
        $failure.details.undoFailures[0].index | Should -Be 0
        $failure.details.undoFailures[0].message | Should -BeLike '*disk full*'
        Get-JournalShape (Read-Journal $Image 'run-1') | Should -Be 'begin,intent 0,done 0,intent 1,done 1,undone 1,end undo-failed'
    }

    It 'refuses <name> before changing anything' -TestCases @(
        @{ name = 'a ".." path'; path = 'C:\inetpub\..\..\etc\passwd'; kind = 'input' }
        @{ name = 'a relative path'; path = 'fs\C\x.txt'; kind = 'input' }
        @{ name = 'a path whose folder is missing'; path = 'D:\nowhere\x.txt'; kind = 'image' }
        @{ name = 'a path through a link to outside the image'; path = 'C:\inetpub\linked\x.txt'; kind = 'image'; link = 'fs/C/inetpub/linked' }
        @{ name = 'a link as the export file'; path = 'services.xml'; kind = 'image'; link = 'services.xml' }
    ) {
        param($name, $path, $kind, $link)
        if ($link) {
            $outside = Join-Path $TestDrive ('outside-' + [guid]::NewGuid().ToString('N'))
            $null = New-Item -ItemType Directory -Path $outside
            $linkPath = Get-ImageFile $Image $link
            if (Test-Path -LiteralPath $linkPath) { Remove-Item -LiteralPath $linkPath -Force }
            $null = New-Item -ItemType SymbolicLink -Path $linkPath -Target $outside
            $script:Before = Get-ImageSnapshot $Image
        }
        $steps = @($Steps[0], (New-FileStep -Path $path -Before $null -AfterBytes $Utf8.GetBytes('x')))
        $failure = Get-ApplyError { Invoke-Execute $Image 'run-1' $steps }
        $failure.kind | Should -Be $kind
        if ($link) { $failure.message | Should -BeLike '*link*' }
        ConvertTo-SnapshotText (Get-ImageSnapshot $Image) | Should -Be (ConvertTo-SnapshotText $Before)
        Test-Path -LiteralPath (Join-Path $Image '.exmit/journal/run-1.jsonl') | Should -BeFalse
    }

    It 'refuses new bytes that do not match their sha256, and a run id whose journal exists' {
        $bad = New-FileStep -Path $WebConfigPath -Before $Steps[1].before -AfterBytes $Utf8.GetBytes('x')
        $bad.after.sha256 = $Steps[1].before
        (Get-ApplyError { Invoke-Execute $Image 'run-1' @($bad) }).kind | Should -Be 'input'
        $null = Invoke-Execute $Image 'run-1' @()
        (Get-ApplyError { Invoke-Execute $Image 'run-1' @() }).kind | Should -Be 'input'
    }

    It 'creates apppools.xml at the image root when it is missing' {
        Remove-Item -LiteralPath (Get-ImageFile $Image 'apppools.xml')
        $bytes = [System.IO.File]::ReadAllBytes((Get-Fixture 'apppools.xml'))
        $null = Invoke-Execute $Image 'run-1' @((New-FileStep -Path 'apppools.xml' -Before $null -AfterBytes $bytes))
        [System.IO.File]::ReadAllBytes((Get-ImageFile $Image 'apppools.xml')) | Should -Be $bytes
    }
}

Describe 'readState and readBlob' {
    BeforeEach {
        $script:Image = New-ApplyImage
        $null = Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $Image); runId = 'run-1' }
        $script:Steps = New-ThreeSteps $Image
        $null = Invoke-Execute $Image 'run-1' $Steps -Ledger @{ data = [System.Convert]::ToBase64String($Utf8.GetBytes('{}')) }
    }
    AfterEach { Clear-ExmitHeldLocks }

    It 'answers an empty state for an image never changed' {
        $fresh = New-ApplyImage
        $state = Invoke-ApplyOp 'readState' @{ target = (Get-ImageTarget $fresh) }
        $state.ledger | Should -BeNullOrEmpty
        @($state.journals).Count | Should -Be 0
        @($state.files).Count | Should -Be 0
        Test-Path -LiteralPath (Join-Path $fresh '.exmit') | Should -BeFalse
    }

    It 'returns the ledger, the journals with their hashes and the saved copies; odd names are ignored by name' {
        [System.IO.File]::WriteAllText((Join-Path $Image '.exmit/journal/bad name!.jsonl'), 'x')
        [System.IO.File]::WriteAllText((Join-Path $Image '.exmit/journal/notes.txt'), 'x')
        $state = Invoke-ApplyOp 'readState' @{ target = (Get-ImageTarget $Image) }
        $state.ledger.sha256 | Should -Be (Get-TestSha $Utf8.GetBytes('{}'))
        @($state.journals).Count | Should -Be 1
        $state.journals[0].name | Should -Be 'run-1.jsonl'
        $bytes = [System.Convert]::FromBase64String($state.journals[0].data)
        $bytes | Should -Be ([System.IO.File]::ReadAllBytes((Join-Path $Image '.exmit/journal/run-1.jsonl')))
        $state.journals[0].sha256 | Should -Be (Get-TestSha $bytes)
        @($state.files | Sort-Object) | Should -Be @(@($Steps[0].before, $Steps[1].before) | Sort-Object)
        @($state.ignored) | Should -Contain 'journal/bad name!.jsonl'
        @($state.ignored) | Should -Contain 'journal/notes.txt'
        ConvertTo-Json -InputObject $state -Depth 12 -Compress | Should -Match '"files":\['
    }

    It 'refuses a link under .exmit, naming it' {
        $outside = Join-Path $TestDrive ('outside-' + [guid]::NewGuid().ToString('N') + '.jsonl')
        [System.IO.File]::WriteAllText($outside, '{}')
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $Image '.exmit/journal/planted.jsonl') -Target $outside
        $failure = Get-ApplyError { Invoke-ApplyOp 'readState' @{ target = (Get-ImageTarget $Image) } }
        $failure.kind | Should -Be 'image'
        $failure.message | Should -BeLike '*planted.jsonl*link*'
    }

    It 'reads a saved copy by hash, null when absent, and refuses one that does not match its name' {
        $sha = $Steps[0].before
        $answer = Invoke-ApplyOp 'readBlob' @{ target = (Get-ImageTarget $Image); sha256 = $sha }
        Get-TestSha ([System.Convert]::FromBase64String($answer.data)) | Should -Be $sha
        (Invoke-ApplyOp 'readBlob' @{ target = (Get-ImageTarget $Image); sha256 = ('0' * 64) }).data | Should -BeNullOrEmpty
        [System.IO.File]::AppendAllText((Join-Path $Image ('.exmit/files/' + $sha)), 'tampered')
        (Get-ApplyError { Invoke-ApplyOp 'readBlob' @{ target = (Get-ImageTarget $Image); sha256 = $sha } }).kind | Should -Be 'image'
        (Get-ApplyError { Invoke-ApplyOp 'readBlob' @{ target = (Get-ImageTarget $Image); sha256 = '../../registry.xml' } }).kind | Should -Be 'input'
    }
}

Describe 'execute: live steps through mocked wrappers' {
    BeforeAll {
        $script:HmCapture = Import-Clixml -LiteralPath (Get-Fixture 'GetService.xml') | Where-Object { $_.Name -eq 'MSExchangeHM' }
        $script:OwaCapture = Import-Clixml -LiteralPath (Get-Fixture 'apppools.xml') | Where-Object { $_.Name -eq 'MSExchangeOWAAppPool' }
        $script:StartCodes = @{ Automatic = 2; Manual = 3; Disabled = 4 }
        $script:RuleElement = @{
            name       = 'rule'
            attributes = @{ name = 'exmit proxynotshell-autodiscover'; stopProcessing = 'true' }
            children   = @(
                @{ name = 'match'; attributes = @{ url = '.*' }; children = @() },
                @{ name = 'conditions'; attributes = @{}; children = @(@{ name = 'add'; attributes = @{ input = '{UrlDecode:{REQUEST_URI}}'; pattern = '(?=.*autodiscover)(?=.*powershell)' }; children = @() }) },
                @{ name = 'action'; attributes = @{ type = 'AbortRequest' }; children = @() }
            )
        }
        $script:LiveSteps = @(
            @{ kind = 'service'; name = 'MSExchangeHM'; expect = @{ status = 'Running'; startType = 'Automatic'; delayedStart = $true }; to = @{ status = 'Stopped'; startType = 'Disabled' } },
            @{ kind = 'appPool'; name = 'MSExchangeOWAAppPool'; expect = @{ state = 'Started'; autoStart = $true }; to = @{ state = 'Stopped'; autoStart = $false } },
            @{ kind = 'iisElement'; op = 'add'; location = 'Default Web Site'; section = 'system.webServer/rewrite/rules'; element = $RuleElement; key = @{ name = 'exmit proxynotshell-autodiscover' } },
            @{ kind = 'globalModule'; op = 'remove'; name = 'TokenCacheModule' }
        )

        function Invoke-LiveExecute {
            param([object[]]$Steps, $Fault = $null, [string]$RunId = 'live-1')
            return (Invoke-ApplyOp 'execute' @{ target = @{ kind = 'local' }; runId = $RunId; mode = 'apply'; catalogSerial = 7; plan = @{}; steps = $Steps; ledger = $null; fault = $Fault })
        }
    }

    BeforeEach {
        $script:LiveState = Join-Path $TestDrive ('live-' + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory -Path $LiveState
        $script:Live = @{ Status = 4; StartType = 2; Delayed = $true; PoolState = 'Started'; AutoStart = $true; Rules = @{}; Modules = @{ TokenCacheModule = '%windir%\System32\inetsrv\cachtokn.dll' }; AppHost = 1 }
        $script:Calls = New-Object System.Collections.Generic.List[string]
        $script:Events = New-Object System.Collections.Generic.List[string]
        Mock Get-ExmitLiveStateDirectory { $LiveState }
        Mock Write-ExmitEvent { $script:Events.Add($Message) }
        Mock Get-ExmitServiceState {
            $copy = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($HmCapture, 1))
            $copy.Status = $Live.Status
            $copy.StartType = $Live.StartType
            $copy
        }
        Mock Get-ExmitServiceDelayedStart { $Live.Delayed }
        Mock Stop-ExmitService { $Calls.Add('Stop-ExmitService ' + $Name); $Live.Status = 1 }
        Mock Start-ExmitService { $Calls.Add('Start-ExmitService ' + $Name); $Live.Status = 4 }
        Mock Set-ExmitServiceStartup { $Calls.Add('Set-ExmitServiceStartup ' + $StartupType); $Live.StartType = $StartCodes[$StartupType] }
        Mock Set-ExmitServiceDelayedStart { $Calls.Add('Set-ExmitServiceDelayedStart ' + $Enabled); $Live.Delayed = $Enabled }
        Mock Get-ExmitAppPoolState {
            $copy = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($OwaCapture, 1))
            $copy.State = $Live.PoolState
            $copy.autoStart = $Live.AutoStart
            $copy
        }
        Mock Set-ExmitAppPool {
            if ($null -ne $AutoStart) { $Calls.Add('Set-ExmitAppPool autoStart ' + $AutoStart); $Live.AutoStart = [bool]$AutoStart }
            if ($State) { $Calls.Add('Set-ExmitAppPool ' + $State); $Live.PoolState = $State }
        }
        Mock Get-ExmitIisElement {
            $name = [string](Get-ExmitField $Key 'name')
            if ($Live.Rules.ContainsKey($name)) { return [ordered]@{ index = 0; element = $Live.Rules[$name] } }
            return $null
        }
        Mock Add-ExmitIisElement { $Calls.Add('Add-ExmitIisElement ' + $Section); $Live.Rules[[string](Get-ExmitField (Get-ExmitField $Element 'attributes') 'name')] = $Element; $Live.AppHost++ }
        Mock Remove-ExmitIisElement { $Calls.Add('Remove-ExmitIisElement ' + $Section); $Live.Rules.Remove([string](Get-ExmitField $Key 'name')); $Live.AppHost++; $true }
        Mock Get-ExmitGlobalModule {
            if ($Live.Modules.ContainsKey($Name)) { return [ordered]@{ name = $Name; image = $Live.Modules[$Name]; index = 3 } }
            return $null
        }
        Mock Add-ExmitGlobalModule { $Calls.Add(('Add-ExmitGlobalModule {0} {1} {2}' -f $Name, $Image, $Index)); $Live.Modules[$Name] = $Image; $Live.AppHost++ }
        Mock Remove-ExmitGlobalModule { $Calls.Add('Remove-ExmitGlobalModule ' + $Name); $Live.Modules.Remove($Name); $Live.AppHost++; $true }
        Mock Get-ExmitApplicationHostHash { Get-ExmitSha256Hex ([System.Text.Encoding]::ASCII.GetBytes([string]$Live.AppHost)) }
        Mock Wait-ExmitInterval { }
        $null = Invoke-ApplyOp 'lock' @{ target = @{ kind = 'local' }; runId = 'live-1' }
    }
    AfterEach { Clear-ExmitHeldLocks }

    It 'makes each change through the wrappers, in order, and journals the prior states' {
        $answer = Invoke-LiveExecute $LiveSteps
        ($Calls -join '|') | Should -Be ('Set-ExmitServiceStartup Disabled|Stop-ExmitService MSExchangeHM|Set-ExmitAppPool autoStart False|Set-ExmitAppPool Stopped|' +
            'Add-ExmitIisElement system.webServer/rewrite/rules|Remove-ExmitGlobalModule TokenCacheModule')
        Should -Invoke Set-ExmitServiceStartup -Times 1 -Exactly -ParameterFilter { $Name -eq 'MSExchangeHM' -and $StartupType -eq 'Disabled' }
        Should -Invoke Add-ExmitIisElement -Times 1 -Exactly -ParameterFilter { $Location -eq 'Default Web Site' -and $Index -eq -1 }
        Should -Invoke Set-ExmitServiceDelayedStart -Times 0
        $lines = Get-Content -LiteralPath (Join-Path $LiveState 'journal/live-1.jsonl') | ForEach-Object { ConvertFrom-Json $_ }
        Get-JournalShape $lines | Should -Be 'begin,intent 0,done 0,intent 1,done 1,intent 2,done 2,intent 3,done 3,end done'
        $lines[1].prior.status | Should -Be 'Running'
        $lines[1].prior.startType | Should -Be 'Automatic'
        $lines[1].prior.delayedStart | Should -BeTrue
        $lines[2].after.status | Should -Be 'Stopped'
        $lines[2].after.startType | Should -Be 'Disabled'
        $lines[3].prior.state | Should -Be 'Started'
        $lines[3].prior.autoStart | Should -BeTrue
        $lines[5].prior.present | Should -BeFalse
        $lines[6].after.present | Should -BeTrue
        $lines[6].after.sha256 | Should -Not -Be $lines[5].prior.sha256
        $lines[7].prior.image | Should -Be '%windir%\System32\inetsrv\cachtokn.dll'
        $answer.steps[3].after.present | Should -BeFalse
        $Events[0] | Should -Be 'step 1/4: service MSExchangeHM to Stopped, Disabled'
        $Events[3] | Should -BeLike 'step 4/4: remove global module TokenCacheModule'
    }

    It 'restores every prior state, delayed start included, when the last step fails' {
        $failure = Get-ApplyError { Invoke-LiveExecute $LiveSteps -Fault @{ step = 3; when = 'after'; kind = 'fail' } }
        $failure.kind | Should -Be 'fault'
        $failure.details.undone | Should -BeTrue
        $Live.Status | Should -Be 4
        $Live.StartType | Should -Be 2
        $Live.Delayed | Should -BeTrue
        $Live.PoolState | Should -Be 'Started'
        $Live.AutoStart | Should -BeTrue
        $Live.Rules.Count | Should -Be 0
        $Live.Modules['TokenCacheModule'] | Should -Be '%windir%\System32\inetsrv\cachtokn.dll'
        Should -Invoke Add-ExmitGlobalModule -Times 1 -Exactly -ParameterFilter { $Name -eq 'TokenCacheModule' -and $Image -eq '%windir%\System32\inetsrv\cachtokn.dll' -and $Index -eq 3 }
        Should -Invoke Remove-ExmitIisElement -Times 1 -Exactly
        Should -Invoke Set-ExmitServiceStartup -Times 1 -Exactly -ParameterFilter { $StartupType -eq 'Automatic' }
        Should -Invoke Start-ExmitService -Times 1 -Exactly
        $lines = Get-Content -LiteralPath (Join-Path $LiveState 'journal/live-1.jsonl') | ForEach-Object { ConvertFrom-Json $_ }
        Get-JournalShape $lines | Should -Be 'begin,intent 0,done 0,intent 1,done 1,intent 2,done 2,intent 3,undone 3,undone 2,undone 1,undone 0,end undone'
    }

    It 'stops with a conflict and calls no change wrapper when a service is not as planned' {
        $Live.Status = 1
        $failure = Get-ApplyError { Invoke-LiveExecute $LiveSteps }
        $failure.kind | Should -Be 'conflict'
        $failure.message | Should -BeLike '*MSExchangeHM changed since the plan: status is Stopped, expected Running*'
        $Calls.Count | Should -Be 0
    }

    It 'leaves a service someone else changed after the run set it, and reports undo-failed' {
        Mock Invoke-ExmitFault -ParameterFilter { $Index -eq 1 -and $When -eq 'before' } {
            $Live.Status = 4
            throw (New-ExmitApplyError -Kind fault -Message 'test fault at step 1 (before)')
        }
        $failure = Get-ApplyError { Invoke-LiveExecute $LiveSteps }
        $failure.details.undone | Should -BeFalse
        $failure.details.undoFailures[0].index | Should -Be 0
        $failure.details.undoFailures[0].message | Should -BeLike '*changed by someone else*status is Running, expected Stopped*'
        Should -Invoke Start-ExmitService -Times 0
        Should -Invoke Set-ExmitServiceStartup -Times 0 -ParameterFilter { $StartupType -eq 'Automatic' }
    }

    It 'gives up on a service that does not stop within its time budget' {
        Mock Stop-ExmitService { }
        { Set-ExmitServiceState -Name 'MSExchangeHM' -To @{ status = 'Stopped' } -BudgetSeconds 0 } | Should -Throw '*did not become Stopped within 0 s*'
    }

    It 'calls no change wrapper under -WhatIf' {
        Set-ExmitServiceState -Name 'MSExchangeHM' -To @{ status = 'Stopped'; startType = 'Disabled'; delayedStart = $false } -WhatIf
        Set-ExmitAppPoolState -Name 'MSExchangeOWAAppPool' -To @{ state = 'Stopped'; autoStart = $false } -WhatIf
        $steps = ConvertFrom-Json (ConvertTo-Json -InputObject $LiveSteps -Depth 20)
        $iis = ConvertTo-ExmitStep -Target @{ kind = 'local' } -Step $steps[2] -Index 2 -ImageRoot $null
        $module = ConvertTo-ExmitStep -Target @{ kind = 'local' } -Step $steps[3] -Index 3 -ImageRoot $null
        $null = Invoke-ExmitStepChange -Step $iis -WhatIf
        $null = Invoke-ExmitStepChange -Step $module -WhatIf
        Undo-ExmitStepChange -Target @{ kind = 'local' } -Record @{ Step = $module; Prior = @{ present = $false }; Done = $true } -WhatIf
        foreach ($name in 'Stop-ExmitService', 'Start-ExmitService', 'Set-ExmitServiceStartup', 'Set-ExmitServiceDelayedStart', 'Set-ExmitAppPool', 'Add-ExmitIisElement', 'Remove-ExmitIisElement', 'Add-ExmitGlobalModule', 'Remove-ExmitGlobalModule') {
            Should -Invoke $name -Times 0 -Exactly
        }
    }

    It 'refuses live steps on an image target' {
        $image = New-ApplyImage
        $null = Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $image); runId = 'live-1' }
        $failure = Get-ApplyError { Invoke-Execute $image 'live-1' @($LiveSteps[0]) }
        $failure.kind | Should -Be 'input'
        $failure.message | Should -BeLike '*service step*image*'
    }
}

Describe 'the engine process' {
    BeforeAll {
        function Invoke-ApplyHost {
            <# Runs the built engine with EXMIT_TEST_HOOKS=1 and the request lines; answers and progress events apart, and the exit code. #>
            param([string[]]$Lines)
            $run = Invoke-TestEngine -Lines $Lines -Environment @{ EXMIT_TEST_HOOKS = '1' }
            return [pscustomobject]@{
                # Answers only; progress events ({"id":N,"event":...}) are counted apart.
                Lines    = @($run.Lines | Where-Object { $_ -notmatch '^\{"id":\d+,"event":' })
                Events   = @($run.Lines | Where-Object { $_ -match '^\{"id":\d+,"event":' })
                Stderr   = $run.Stderr
                ExitCode = $run.ExitCode
            }
        }

        function New-ExecuteLine {
            param([int]$Id, [string]$Image, [string]$RunId, [object[]]$Steps, $Fault)
            return (ConvertTo-Json -Compress -Depth 20 -InputObject ([ordered]@{
                        id = $Id; op = 'execute'; target = (Get-ImageTarget $Image); runId = $RunId; mode = 'apply'; catalogSerial = 7
                        plan = @{}; steps = $Steps; ledger = $null; fault = $Fault
                    }))
        }
    }

    It 'leaves a journal with the intent of step 2 and no end when the process dies there' {
        $image = New-ApplyImage
        $steps = New-ThreeSteps $image
        $run = Invoke-ApplyHost @(
            (ConvertTo-Json -Compress -Depth 5 -InputObject ([ordered]@{ id = 1; op = 'lock'; target = (Get-ImageTarget $image); runId = 'crash-1' })),
            (New-ExecuteLine 2 $image 'crash-1' $steps @{ step = 2; when = 'after'; kind = 'exit' })
        )
        $run.ExitCode | Should -Be 9
        $run.Lines.Count | Should -Be 1
        # Steps 1 to 3 were announced before the crash.
        $run.Events.Count | Should -Be 3
        (ConvertFrom-Json $run.Lines[0]).ok | Should -BeTrue
        Get-JournalShape (Read-Journal $image 'crash-1') | Should -Be 'begin,intent 0,done 0,intent 1,done 1,intent 2'
        # The crashed run's lock is stale for the next run.
        $answer = Invoke-ApplyOp 'lock' @{ target = (Get-ImageTarget $image); runId = 'repair-1' }
        $answer.staleCleared.runId | Should -Be 'crash-1'
        Clear-ExmitHeldLocks
    }

    It 'answers a failed run with error details and releases the lock when it exits' {
        $image = New-ApplyImage
        $before = Get-ImageSnapshot $image
        $steps = New-ThreeSteps $image
        $run = Invoke-ApplyHost @(
            (ConvertTo-Json -Compress -Depth 5 -InputObject ([ordered]@{ id = 1; op = 'lock'; target = (Get-ImageTarget $image); runId = 'run-9' })),
            (New-ExecuteLine 2 $image 'run-9' $steps @{ step = 1; when = 'after'; kind = 'fail' }),
            '{"id":3,"op":"exit"}'
        )
        $run.ExitCode | Should -Be 0
        $run.Lines.Count | Should -Be 3
        $run.Lines[1] | Should -Match '"details":\{"failedStep":1,"undone":true,"undoFailures":\[\]\}'
        (ConvertFrom-Json $run.Lines[1]).error.kind | Should -Be 'fault'
        ConvertTo-SnapshotText (Get-ImageSnapshot $image) | Should -Be (ConvertTo-SnapshotText $before)
        Test-Path -LiteralPath (Join-Path $image '.exmit/lock') | Should -BeFalse
    }
}

Describe 'IIS wrappers over a fake Microsoft.Web.Administration' {
    BeforeAll {
        # Just enough of ServerManager's object model: elements with attributes, schema child elements
        # (a rule has match, conditions, action; conditions is a collection) and collections.
        if (-not ('ExmitFakeElement' -as [type])) {
            Add-Type -TypeDefinition @'
using System.Collections;
using System.Collections.Generic;
public class ExmitFakeAttribute {
    public string Name; public object Value; public bool IsInheritedFromDefaultValue;
}
public class ExmitFakeSchema { public object CollectionSchema; }
public class ExmitFakeElement {
    public string ElementTagName;
    public bool IsLocallyStored = true;
    public ExmitFakeSchema Schema = new ExmitFakeSchema();
    private List<string> names = new List<string>();
    private Dictionary<string, object> values = new Dictionary<string, object>();
    private List<ExmitFakeElement> children = new List<ExmitFakeElement>();
    private ExmitFakeCollection items;
    public ExmitFakeElement(string tag, bool isCollection) {
        ElementTagName = tag;
        if (isCollection) { items = new ExmitFakeCollection(); Schema.CollectionSchema = "add"; }
        if (tag == "rule") {
            children.Add(new ExmitFakeElement("match", false));
            children.Add(new ExmitFakeElement("conditions", true));
            children.Add(new ExmitFakeElement("action", false));
        }
    }
    public ExmitFakeAttribute[] Attributes { get {
        List<ExmitFakeAttribute> list = new List<ExmitFakeAttribute>();
        foreach (string name in names) { ExmitFakeAttribute a = new ExmitFakeAttribute(); a.Name = name; a.Value = values[name]; list.Add(a); }
        return list.ToArray();
    } }
    public ExmitFakeElement[] ChildElements { get { return children.ToArray(); } }
    public object GetAttributeValue(string name) { return values.ContainsKey(name) ? values[name] : null; }
    public void SetAttributeValue(string name, object value) { if (!values.ContainsKey(name)) { names.Add(name); } values[name] = value; }
    public ExmitFakeElement GetChildElement(string name) { foreach (ExmitFakeElement c in children) { if (c.ElementTagName == name) { return c; } } return null; }
    public ExmitFakeCollection GetCollection() { return items; }
}
public class ExmitFakeCollection : ArrayList {
    public ExmitFakeElement CreateElement(string tag) { return new ExmitFakeElement(tag, false); }
    public ExmitFakeElement AddAt(int index, ExmitFakeElement item) { Insert(index, item); return item; }
}
'@
        }

        function New-FakeElement {
            param([string]$Tag)
            return (New-Object ExmitFakeElement $Tag, $false)
        }

        function New-FakeServerManager {
            $manager = [pscustomobject]@{ Sections = @{}; Commits = 0 }
            $manager | Add-Member -MemberType ScriptMethod -Name GetApplicationHostConfiguration -Value {
                $owner = $this
                $config = [pscustomobject]@{ Owner = $owner }
                $config | Add-Member -MemberType ScriptMethod -Name GetSection -Value {
                    param($section, $location)
                    $key = '{0}|{1}' -f $section, $location
                    if (-not $this.Owner.Sections.ContainsKey($key)) { $this.Owner.Sections[$key] = New-Object ExmitFakeElement 'section', $true }
                    $this.Owner.Sections[$key]
                }
                $config
            }
            $manager | Add-Member -MemberType ScriptMethod -Name CommitChanges -Value { $this.Commits++ }
            $manager | Add-Member -MemberType ScriptMethod -Name Dispose -Value { }
            return $manager
        }
    }

    BeforeEach {
        $script:Manager = New-FakeServerManager
        Mock Get-ExmitServerManager { $Manager }
        $script:Rule = ConvertFrom-Json '{"name":"rule","attributes":{"name":"exmit proxynotshell-autodiscover","stopProcessing":"true"},"children":[{"name":"match","attributes":{"url":".*"},"children":[]},{"name":"conditions","attributes":{},"children":[{"name":"add","attributes":{"input":"{UrlDecode:{REQUEST_URI}}","pattern":"(?=.*autodiscover)(?=.*powershell)"},"children":[]}]},{"name":"action","attributes":{"type":"AbortRequest"},"children":[]}]}'
        $script:Key = ConvertFrom-Json '{"name":"exmit proxynotshell-autodiscover"}'
        $script:Section = 'system.webServer/rewrite/rules'
    }

    It 'adds a rule with its match, conditions and action, commits, finds it by key and removes it' {
        $other = New-FakeElement -Tag 'rule'
        $other.SetAttributeValue('name', 'EEMS rule')
        $null = $Manager.GetApplicationHostConfiguration().GetSection($Section, 'Default Web Site').GetCollection().Add($other)

        Add-ExmitIisElement -Location 'Default Web Site' -Section $Section -Element $Rule -Index 0
        $Manager.Commits | Should -Be 1
        $collection = $Manager.GetApplicationHostConfiguration().GetSection($Section, 'Default Web Site').GetCollection()
        $collection.Count | Should -Be 2
        $added = $collection[0]
        $added.GetAttributeValue('name') | Should -Be 'exmit proxynotshell-autodiscover'
        $added.GetChildElement('match').GetAttributeValue('url') | Should -Be '.*'
        $added.GetChildElement('conditions').GetCollection()[0].GetAttributeValue('pattern') | Should -Be '(?=.*autodiscover)(?=.*powershell)'
        $added.GetChildElement('action').GetAttributeValue('type') | Should -Be 'AbortRequest'

        $found = Get-ExmitIisElement -Location 'Default Web Site' -Section $Section -Key $Key
        $found.index | Should -Be 0
        $found.element.attributes['stopProcessing'] | Should -Be 'true'
        (ConvertTo-Json -InputObject $found.element -Depth 12 -Compress) | Should -Match '"name":"conditions","attributes":\{\},"children":\[\{"name":"add"'

        Remove-ExmitIisElement -Location 'Default Web Site' -Section $Section -Key $Key | Should -BeTrue
        $Manager.Commits | Should -Be 2
        $collection.Count | Should -Be 1
        $collection[0].GetAttributeValue('name') | Should -Be 'EEMS rule'
        Remove-ExmitIisElement -Location 'Default Web Site' -Section $Section -Key $Key | Should -BeFalse
    }

    It 're-adds a removed element from its recorded form at its recorded index' {
        Add-ExmitIisElement -Location 'Default Web Site' -Section $Section -Element $Rule
        $recorded = Get-ExmitIisElement -Location 'Default Web Site' -Section $Section -Key $Key
        $null = Remove-ExmitIisElement -Location 'Default Web Site' -Section $Section -Key $Key
        Add-ExmitIisElement -Location 'Default Web Site' -Section $Section -Element $recorded.element -Index $recorded.index
        $again = Get-ExmitIisElement -Location 'Default Web Site' -Section $Section -Key $Key
        (ConvertTo-Json -InputObject $again -Depth 12 -Compress) | Should -Be (ConvertTo-Json -InputObject $recorded -Depth 12 -Compress)
    }

    It 'removes and restores a global module, and changes nothing under -WhatIf' {
        Add-ExmitGlobalModule -Name 'TokenCacheModule' -Image '%windir%\System32\inetsrv\cachtokn.dll'
        (Get-ExmitGlobalModule -Name 'TokenCacheModule').image | Should -Be '%windir%\System32\inetsrv\cachtokn.dll'
        Remove-ExmitGlobalModule -Name 'TokenCacheModule' -WhatIf | Should -BeFalse
        $Manager.Commits | Should -Be 1
        Remove-ExmitGlobalModule -Name 'TokenCacheModule' | Should -BeTrue
        Get-ExmitGlobalModule -Name 'TokenCacheModule' | Should -BeNullOrEmpty
        Add-ExmitIisElement -Location 'Default Web Site' -Section $Section -Element $Rule -WhatIf
        $Manager.Commits | Should -Be 2
    }
}
