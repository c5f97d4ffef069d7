# The run lock (image: DIR/.exmit/lock, live: %ProgramData%\exmit\lock): the lock and unlock
# operations, and the release of every lock this engine still holds when it exits.

function Get-ExmitHeldLocks {
    <# .SYNOPSIS The locks this engine process holds: a list of @{ Path; RunId } (made on first use). #>
    $variable = Get-Variable -Name 'ExmitHeldLockList' -Scope Script -ErrorAction SilentlyContinue
    if ($null -eq $variable) {
        $script:ExmitHeldLockList = New-Object System.Collections.Generic.List[object]
        return , $script:ExmitHeldLockList
    }
    return , $variable.Value
}

function Test-ExmitLockHeld {
    <# .SYNOPSIS True when this engine holds the lock file at Path for RunId. #>
    param([string]$Path, [string]$RunId)
    foreach ($held in (Get-ExmitHeldLocks)) {
        if ($held.Path -eq $Path -and $held.RunId -ceq $RunId) { return $true }
    }
    return $false
}

function Test-ExmitRunId {
    <# .SYNOPSIS True for a run id that can name a journal file (^[0-9A-Za-z._-]+$, at most 100 characters). #>
    param($RunId)
    return ($RunId -is [string] -and $RunId -cmatch '^[0-9A-Za-z._-]{1,100}$' -and $RunId -notmatch '^\.+$')
}

function Get-ExmitHostName {
    <# .SYNOPSIS This computer's name, as written in lock files. #>
    return [System.Environment]::MachineName
}

function Test-ExmitProcessAlive {
    <#
    .SYNOPSIS True when a process with this id runs and started no later than StartedAt (a later start
    means the id was reused by another process). A process whose start time cannot be read counts as alive.
    #>
    param([int]$ProcessId, [Nullable[datetime]]$StartedAt)
    $process = Get-Process -Id $ProcessId -ErrorAction SilentlyContinue
    if ($null -eq $process) { return $false }
    if ($null -eq $StartedAt) { return $true }
    try {
        $start = $process.StartTime.ToUniversalTime()
    } catch {
        Write-Verbose ('process {0}: start time unreadable: {1}' -f $ProcessId, $_.Exception.Message)
        return $true
    }
    # Two seconds of slack: the lock is written after the process started, clocks are coarse.
    return ($start -le ([datetime]$StartedAt).ToUniversalTime().AddSeconds(2))
}

function Get-ExmitLockPath {
    <# .SYNOPSIS The lock file of a target (its state folder is created for an image). #>
    param([hashtable]$Target, [switch]$Create)
    $state = Get-ExmitStateDirectory -Target $Target -Create:$Create
    if ($null -eq $state) { return $null }
    return [System.IO.Path]::Combine($state, 'lock')
}

function Read-ExmitLockFile {
    <# .SYNOPSIS The parsed lock file: @{ Valid; Pid; Host; RunId; StartedAt; StartedAtText }; Valid is false when unreadable or malformed; $null when absent. #>
    param([string]$Path)
    $entry = Get-ExmitEntryInfo $Path
    if ($null -eq $entry) { return $null }
    if (Test-ExmitLinkEntry $entry) {
        throw (New-ExmitApplyError -Kind image -File $Path -Message ('{0} is a link: refused (exmit never follows a link in its state folder)' -f $Path))
    }
    $info = @{ Valid = $false; Pid = $null; Host = $null; RunId = $null; StartedAt = $null; StartedAtText = $null }
    try {
        if ($entry.Length -gt 64KB) { return $info }
        $text = ConvertFrom-ExmitTextBytes -Bytes (Read-ExmitFileBytes -Path $Path -MaxBytes 64KB)
        $parsed = ConvertFrom-Json -InputObject $text
    } catch {
        Write-Verbose ('lock file {0} unreadable: {1}' -f $Path, $_.Exception.Message)
        return $info
    }
    if (-not ($parsed -is [System.Management.Automation.PSCustomObject])) { return $info }
    $lockPid = Get-ExmitField $parsed 'pid'
    $lockHost = Get-ExmitField $parsed 'host'
    $runId = Get-ExmitField $parsed 'runId'
    $startedAt = Get-ExmitField $parsed 'startedAt'
    if (-not ($lockPid -is [int] -or $lockPid -is [long]) -or -not ($lockHost -is [string]) -or -not ($runId -is [string])) { return $info }
    $info.Pid = [long]$lockPid
    $info.Host = $lockHost
    $info.RunId = $runId
    if ($startedAt -is [datetime]) {
        # PowerShell 7's ConvertFrom-Json turns ISO dates into DateTime.
        $info.StartedAt = $startedAt.ToUniversalTime()
        $info.StartedAtText = $info.StartedAt.ToString('yyyy-MM-ddTHH:mm:ss.fffZ', [System.Globalization.CultureInfo]::InvariantCulture)
    } elseif ($startedAt -is [string]) {
        $info.StartedAtText = $startedAt
        $parsedDate = [datetime]::MinValue
        $styles = [System.Globalization.DateTimeStyles]::AdjustToUniversal -bor [System.Globalization.DateTimeStyles]::AssumeUniversal
        if ([datetime]::TryParse($startedAt, [System.Globalization.CultureInfo]::InvariantCulture, $styles, [ref]$parsedDate)) { $info.StartedAt = $parsedDate }
    } else {
        return $info
    }
    $info.Valid = $true
    return $info
}

function New-ExmitLockFile {
    <# .SYNOPSIS Creates the lock file (FileMode CreateNew) with {pid, host, runId, startedAt}; $false when it already exists. #>
    param([string]$Path, [string]$RunId)
    $content = [ordered]@{
        pid       = $PID
        host      = (Get-ExmitHostName)
        runId     = $RunId
        startedAt = [System.DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ss.fffZ', [System.Globalization.CultureInfo]::InvariantCulture)
    }
    $bytes = (New-Object System.Text.UTF8Encoding $false).GetBytes((ConvertTo-Json -InputObject $content -Depth 2 -Compress))
    try {
        $stream = New-Object System.IO.FileStream $Path, ([System.IO.FileMode]::CreateNew), ([System.IO.FileAccess]::Write), ([System.IO.FileShare]::None)
    } catch {
        if ([System.IO.File]::Exists($Path) -or $null -ne (Get-ExmitEntryInfo $Path)) { return $false }
        throw (New-ExmitApplyError -Kind environment -File $Path -Message ('{0}: the lock cannot be created: {1}' -f $Path, (Get-ExmitErrorMessage $_)))
    }
    try {
        $stream.Write($bytes, 0, $bytes.Length)
        $stream.Flush($true)
    } finally {
        $stream.Dispose()
    }
    return $true
}

function Lock-ExmitTarget {
    <#
    .SYNOPSIS lock: takes the target's lock for RunId. A lock of a live process on this host is a `lock`
    error; a dead run's (or unreadable) lock is stale: replaced, and reported in staleCleared.
    #>
    param([Parameter(Mandatory = $true)][hashtable]$Target, [Parameter(Mandatory = $true)][string]$RunId)
    if (-not (Test-ExmitRunId $RunId)) {
        throw (New-ExmitApplyError -Kind input -Message ('lock: "runId" must match ^[0-9A-Za-z._-]+$ (at most 100 characters): {0}' -f $RunId))
    }
    $path = Get-ExmitLockPath -Target $Target -Create
    if (Test-ExmitLockHeld -Path $path -RunId $RunId) { return [ordered]@{ lock = $path; staleCleared = $null } }
    $staleCleared = $null
    for ($attempt = 0; $attempt -lt 3; $attempt++) {
        if (New-ExmitLockFile -Path $path -RunId $RunId) {
            (Get-ExmitHeldLocks).Add(@{ Path = $path; RunId = $RunId })
            return [ordered]@{ lock = $path; staleCleared = $staleCleared }
        }
        $existing = Read-ExmitLockFile -Path $path
        if ($null -eq $existing) { continue }
        if ($existing.Valid -and $existing.Host -eq (Get-ExmitHostName) -and (Test-ExmitProcessAlive -ProcessId $existing.Pid -StartedAt $existing.StartedAt)) {
            throw (New-ExmitApplyError -Kind lock -File $path -Message ('{0} is held by a running exmit (pid {1}, run {2}, started {3}): wait for it to finish' -f $path, $existing.Pid, $existing.RunId, $existing.StartedAtText))
        }
        if ($existing.Valid) {
            $staleCleared = [ordered]@{ pid = $existing.Pid; runId = $existing.RunId; startedAt = $existing.StartedAtText }
        } else {
            $staleCleared = $true
        }
        [System.IO.File]::Delete($path)
    }
    throw (New-ExmitApplyError -Kind lock -File $path -Message ('{0}: another run keeps taking the lock' -f $path))
}

function Unlock-ExmitTarget {
    <# .SYNOPSIS unlock: releases the lock this engine holds for RunId; {released: false} when there is none; a `lock` error when another run holds it. #>
    param([Parameter(Mandatory = $true)][hashtable]$Target, [Parameter(Mandatory = $true)][string]$RunId)
    $path = Get-ExmitLockPath -Target $Target
    $released = $false
    if ($null -ne $path) {
        $existing = Read-ExmitLockFile -Path $path
        if ($null -ne $existing) {
            if (-not ($existing.Valid -and $existing.RunId -ceq $RunId -and $existing.Pid -eq $PID -and $existing.Host -eq (Get-ExmitHostName))) {
                throw (New-ExmitApplyError -Kind lock -File $path -Message ('{0} is not held by this run ({1}): left in place' -f $path, $RunId))
            }
            [System.IO.File]::Delete($path)
            $released = $true
            # A run that changed nothing leaves no trace in an image: an .exmit that only held the lock goes too.
            $folder = [System.IO.Path]::GetDirectoryName($path)
            if ($Target.kind -eq 'image' -and @([System.IO.Directory]::GetFileSystemEntries($folder)).Count -eq 0) {
                [System.IO.Directory]::Delete($folder)
            }
        }
    }
    $held = Get-ExmitHeldLocks
    for ($i = $held.Count - 1; $i -ge 0; $i--) {
        if ($held[$i].RunId -ceq $RunId -and ($null -eq $path -or $held[$i].Path -eq $path)) { $held.RemoveAt($i) }
    }
    return [ordered]@{ released = $released }
}

function Clear-ExmitHeldLocks {
    <# .SYNOPSIS Removes every lock file this engine still holds (call it in the engine's finally, so a normal exit never leaves a lock). #>
    $held = Get-ExmitHeldLocks
    foreach ($lock in @($held.ToArray())) {
        try {
            $existing = Read-ExmitLockFile -Path $lock.Path
            if ($null -ne $existing -and $existing.Valid -and $existing.Pid -eq $PID -and $existing.RunId -ceq $lock.RunId) {
                [System.IO.File]::Delete($lock.Path)
            }
        } catch {
            [Console]::Error.WriteLine(('exmit-engine: the lock {0} could not be released: {1}' -f $lock.Path, $_.Exception.Message))
        }
    }
    $held.Clear()
}
