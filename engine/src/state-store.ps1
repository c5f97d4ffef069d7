# The run state folder (image: DIR/.exmit, live: %ProgramData%\exmit): errors with details, hashes,
# atomic writes, and the readState / readBlob operations. Functions only (joined by the engine build).

function New-ExmitApplyError {
    <#
    .SYNOPSIS Makes the exception the protocol turns into an error object; unlike New-ExmitError it
    knows the apply kinds (lock, conflict, step, fault) and carries an optional details object.
    .DESCRIPTION Data['exmitKind'], Data['exmitFile'] as New-ExmitError; Data['exmitDetails'] holds the
    details dictionary (or is absent). Get-ExmitErrorDetails reads it back for the dispatcher.
    #>
    param(
        [Parameter(Mandatory = $true)][ValidateSet('image', 'input', 'environment', 'policy', 'lock', 'conflict', 'step', 'fault', 'internal')][string]$Kind,
        [Parameter(Mandatory = $true)][string]$Message,
        [string]$File,
        $Details
    )
    $oneLine = ($Message -replace '[\r\n]+', ' ').Trim()
    $exception = New-Object System.InvalidOperationException $oneLine
    $exception.Data['exmitKind'] = $Kind
    if ($File) {
        $exception.Data['exmitFile'] = $File
    } else {
        $exception.Data['exmitFile'] = $null
    }
    if ($null -ne $Details) { $exception.Data['exmitDetails'] = $Details }
    return $exception
}

function Get-ExmitErrorDetails {
    <# .SYNOPSIS The details object of an exmit error (record or exception, unwrapped as ConvertTo-ExmitErrorObject does); $null when it has none. #>
    param($ErrorRecord)
    $probe = $ErrorRecord
    if ($ErrorRecord -is [System.Management.Automation.ErrorRecord]) { $probe = $ErrorRecord.Exception }
    while ($null -ne $probe) {
        if ($null -ne $probe.Data -and $probe.Data.Contains('exmitKind')) {
            if ($probe.Data.Contains('exmitDetails')) { return $probe.Data['exmitDetails'] }
            return $null
        }
        $probe = $probe.InnerException
    }
    return $null
}

function Get-ExmitErrorKind {
    <# .SYNOPSIS The exmit kind of an error record or exception (unwrapped); 'internal' when it is not an exmit error. #>
    param($ErrorRecord)
    $probe = $ErrorRecord
    if ($ErrorRecord -is [System.Management.Automation.ErrorRecord]) { $probe = $ErrorRecord.Exception }
    while ($null -ne $probe) {
        if ($null -ne $probe.Data -and $probe.Data.Contains('exmitKind')) { return [string]$probe.Data['exmitKind'] }
        $probe = $probe.InnerException
    }
    return 'internal'
}

function Get-ExmitErrorMessage {
    <# .SYNOPSIS The one-line message of an error record or exception, the exmit one when wrapped. #>
    param($ErrorRecord)
    $exception = $ErrorRecord
    if ($ErrorRecord -is [System.Management.Automation.ErrorRecord]) { $exception = $ErrorRecord.Exception }
    $probe = $exception
    while ($null -ne $probe) {
        if ($null -ne $probe.Data -and $probe.Data.Contains('exmitKind')) { $exception = $probe; break }
        $probe = $probe.InnerException
    }
    return (([string]$exception.Message) -replace '[\r\n]+', ' ').Trim()
}

function Get-ExmitSha256Hex {
    <# .SYNOPSIS The lowercase hex SHA-256 of bytes. #>
    param([byte[]]$Bytes)
    $sha = [System.Security.Cryptography.SHA256]::Create()
    try {
        $hash = $sha.ComputeHash($Bytes)
    } finally {
        $sha.Dispose()
    }
    return ([System.BitConverter]::ToString($hash) -replace '-', '').ToLowerInvariant()
}

function Get-ExmitFileSha256 {
    <# .SYNOPSIS The lowercase hex SHA-256 of a file's bytes, or $null when there is no such file. #>
    param([string]$Path)
    if (-not [System.IO.File]::Exists($Path)) { return $null }
    return (Get-ExmitSha256Hex -Bytes (Read-ExmitFileBytes -Path $Path -MaxBytes $script:ExmitLimits.FileBytes -Kind environment))
}

function Test-ExmitSha256Text {
    <# .SYNOPSIS True for 64 lowercase hex digits. #>
    param($Value)
    return ($Value -is [string] -and $Value -cmatch '^[0-9a-f]{64}$')
}

function Test-ExmitStateName {
    <# .SYNOPSIS True for a file name allowed in the state folder (^[0-9A-Za-z._-]+$, not dots only). #>
    param($Name)
    return ($Name -is [string] -and $Name -cmatch '^[0-9A-Za-z._-]{1,200}$' -and $Name -notmatch '^\.+$')
}

function Test-ExmitLinkEntry {
    <# .SYNOPSIS True when a file-system entry is a link (reparse point); never follows it. #>
    param([System.IO.FileSystemInfo]$Entry)
    return (($Entry.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -ne 0)
}

function Get-ExmitEntryInfo {
    <# .SYNOPSIS The entry at a path without following it ($null when nothing is there). #>
    param([string]$Path)
    $directory = New-Object System.IO.DirectoryInfo $Path
    if ($directory.Exists) { return $directory }
    $file = New-Object System.IO.FileInfo $Path
    if ($file.Exists) { return $file }
    # A dangling link exists for neither: its attributes still say so.
    try {
        $attributes = [System.IO.File]::GetAttributes($Path)
        if (($attributes -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) { return $file }
    } catch [System.IO.IOException] {
        return $null
    } catch [System.UnauthorizedAccessException] {
        return $null
    }
    return $null
}

function Write-ExmitFileAtomic {
    <#
    .SYNOPSIS Replaces (or creates) a file atomically: a temp file beside it, written and flushed to
    disk, then renamed over it. The temp file is removed on failure.
    #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Path, [Parameter(Mandatory = $true)][AllowEmptyCollection()][byte[]]$Bytes)
    if (-not $PSCmdlet.ShouldProcess($Path, 'write')) { return }
    $directory = [System.IO.Path]::GetDirectoryName($Path)
    $temp = [System.IO.Path]::Combine($directory, ([System.IO.Path]::GetFileName($Path) + '.exmit-' + [guid]::NewGuid().ToString('N') + '.tmp'))
    try {
        $stream = New-Object System.IO.FileStream $temp, ([System.IO.FileMode]::CreateNew), ([System.IO.FileAccess]::Write), ([System.IO.FileShare]::None)
        try {
            $stream.Write($Bytes, 0, $Bytes.Length)
            $stream.Flush($true)
        } finally {
            $stream.Dispose()
        }
        if ([System.IO.File]::Exists($Path)) {
            [System.IO.File]::Replace($temp, $Path, [NullString]::Value)
        } else {
            [System.IO.File]::Move($temp, $Path)
        }
    } finally {
        if ([System.IO.File]::Exists($temp)) { [System.IO.File]::Delete($temp) }
    }
}

function Get-ExmitLiveStateDirectory {
    <# .SYNOPSIS %ProgramData%\exmit, the live state folder (created and checked by the TypeScript side). #>
    $programData = [System.Environment]::GetFolderPath([System.Environment+SpecialFolder]::CommonApplicationData)
    return [System.IO.Path]::Combine($programData, 'exmit')
}

function Get-ExmitStateDirectory {
    <#
    .SYNOPSIS The state folder of a target: IMAGE/.exmit or %ProgramData%\exmit; $null when it does not
    exist and Create is not given. A link there is refused (image error).
    #>
    param([Parameter(Mandatory = $true)][hashtable]$Target, [switch]$Create)
    if ($Target.kind -eq 'image') {
        $root = Resolve-ExmitImageRoot $Target.path
        $path = [System.IO.Path]::Combine($root, '.exmit')
        $display = '.exmit'
    } else {
        $path = Get-ExmitLiveStateDirectory
        $display = $path
    }
    $entry = Get-ExmitEntryInfo $path
    if ($null -ne $entry) {
        if (Test-ExmitLinkEntry $entry) {
            throw (New-ExmitApplyError -Kind image -File $display -Message ('{0} is a link: refused (exmit never follows a link in its state folder)' -f $display))
        }
        if (-not ($entry -is [System.IO.DirectoryInfo])) {
            throw (New-ExmitApplyError -Kind image -File $display -Message ('{0} is not a folder' -f $display))
        }
        return $entry.FullName
    }
    if (-not $Create) { return $null }
    if ($Target.kind -ne 'image') {
        throw (New-ExmitApplyError -Kind environment -File $path -Message ('the state folder {0} does not exist (exmit creates it, with its access rules, before a run)' -f $path))
    }
    $null = [System.IO.Directory]::CreateDirectory($path)
    if (-not (Test-ExmitWindows)) {
        # Owner-only off Windows (mode 0700): what is inside stays the owner's whatever the umask.
        [System.IO.File]::SetUnixFileMode($path, [System.IO.UnixFileMode]'UserRead, UserWrite, UserExecute')
    }
    return $path
}

function Get-ExmitStateSubdirectory {
    <# .SYNOPSIS A sub-folder (journal, files) of the state folder; $null when absent and Create is not given; a link is refused. #>
    param([Parameter(Mandatory = $true)][string]$StateDirectory, [Parameter(Mandatory = $true)][string]$Name, [switch]$Create)
    $path = [System.IO.Path]::Combine($StateDirectory, $Name)
    $entry = Get-ExmitEntryInfo $path
    if ($null -ne $entry) {
        if (Test-ExmitLinkEntry $entry) {
            throw (New-ExmitApplyError -Kind image -File $path -Message ('{0} is a link: refused (exmit never follows a link in its state folder)' -f $path))
        }
        if (-not ($entry -is [System.IO.DirectoryInfo])) {
            throw (New-ExmitApplyError -Kind image -File $path -Message ('{0} is not a folder' -f $path))
        }
        return $entry.FullName
    }
    if (-not $Create) { return $null }
    $null = [System.IO.Directory]::CreateDirectory($path)
    return $path
}

function Read-ExmitStateFile {
    <# .SYNOPSIS The bytes of a state file, refusing links and files over MaxBytes (image errors); $null when absent. #>
    param([string]$Path, [long]$MaxBytes)
    $entry = Get-ExmitEntryInfo $Path
    if ($null -eq $entry) { return $null }
    if (Test-ExmitLinkEntry $entry) {
        throw (New-ExmitApplyError -Kind image -File $Path -Message ('{0} is a link: refused (exmit never follows a link in its state folder)' -f $Path))
    }
    if (-not ($entry -is [System.IO.FileInfo])) {
        throw (New-ExmitApplyError -Kind image -File $Path -Message ('{0} is not a file' -f $Path))
    }
    if ($entry.Length -gt $MaxBytes) {
        throw (New-ExmitApplyError -Kind image -File $Path -Message ('{0}: larger than the limit of {1} bytes ({2} bytes)' -f $Path, $MaxBytes, $entry.Length))
    }
    return , (Read-ExmitFileBytes -Path $entry.FullName -MaxBytes $MaxBytes -DisplayName $Path -Kind image)
}

function Get-ExmitStateEntries {
    <# .SYNOPSIS The entries of a state sub-folder sorted by name (ordinal): @{ Valid = FileInfo[]; Ignored = names }; links refused. #>
    param([string]$Directory)
    $valid = New-Object System.Collections.Generic.List[object]
    $ignored = New-Object System.Collections.Generic.List[string]
    if ([string]::IsNullOrEmpty($Directory)) { return @{ Valid = $valid; Ignored = $ignored } }
    $byName = New-Object 'System.Collections.Generic.SortedDictionary[string,object]' ([System.StringComparer]::Ordinal)
    foreach ($entry in (New-Object System.IO.DirectoryInfo $Directory).GetFileSystemInfos()) { $byName[$entry.Name] = $entry }
    foreach ($entry in $byName.Values) {
        if (Test-ExmitLinkEntry $entry) {
            throw (New-ExmitApplyError -Kind image -File $entry.FullName -Message ('{0} is a link: refused (exmit never follows a link in its state folder)' -f $entry.FullName))
        }
        if (-not (Test-ExmitStateName $entry.Name) -or -not ($entry -is [System.IO.FileInfo])) {
            $ignored.Add($entry.Name)
            continue
        }
        $valid.Add($entry)
    }
    return @{ Valid = $valid; Ignored = $ignored }
}

function Read-ExmitState {
    <#
    .SYNOPSIS readState: the ledger, the journals (at most 200, the newest by name, each at most 8 MB) and
    the names of the saved copies, from the target's state folder. Nothing is created.
    #>
    param([Parameter(Mandatory = $true)][hashtable]$Target)
    $maxJournals = 200
    $maxJournalBytes = 8MB
    $result = [ordered]@{ ledger = $null; journals = [object[]]@(); files = [object[]]@(); ignored = [object[]]@() }
    $state = Get-ExmitStateDirectory -Target $Target
    if ($null -eq $state) { return $result }
    $ignored = New-Object System.Collections.Generic.List[string]

    $ledgerBytes = Read-ExmitStateFile -Path ([System.IO.Path]::Combine($state, 'ledger.json')) -MaxBytes $maxJournalBytes
    if ($null -ne $ledgerBytes) {
        $result.ledger = [ordered]@{ data = [System.Convert]::ToBase64String($ledgerBytes); sha256 = (Get-ExmitSha256Hex $ledgerBytes) }
    }

    $journalDirectory = Get-ExmitStateSubdirectory -StateDirectory $state -Name 'journal'
    $listing = Get-ExmitStateEntries $journalDirectory
    foreach ($name in $listing.Ignored) { $ignored.Add('journal/' + $name) }
    $journalEntries = @($listing.Valid | Where-Object { $_.Name.EndsWith('.jsonl', [System.StringComparison]::Ordinal) })
    foreach ($entry in @($listing.Valid | Where-Object { -not $_.Name.EndsWith('.jsonl', [System.StringComparison]::Ordinal) })) { $ignored.Add('journal/' + $entry.Name) }
    if ($journalEntries.Count -gt $maxJournals) {
        foreach ($entry in ($journalEntries | Select-Object -First ($journalEntries.Count - $maxJournals))) { $ignored.Add('journal/' + $entry.Name) }
        $journalEntries = @($journalEntries | Select-Object -Last $maxJournals)
    }
    $journals = New-Object System.Collections.Generic.List[object]
    foreach ($entry in $journalEntries) {
        $bytes = Read-ExmitStateFile -Path $entry.FullName -MaxBytes $maxJournalBytes
        $journals.Add([ordered]@{ name = $entry.Name; data = [System.Convert]::ToBase64String($bytes); sha256 = (Get-ExmitSha256Hex $bytes) })
    }
    $result.journals = [object[]]$journals.ToArray()

    $filesDirectory = Get-ExmitStateSubdirectory -StateDirectory $state -Name 'files'
    $listing = Get-ExmitStateEntries $filesDirectory
    foreach ($name in $listing.Ignored) { $ignored.Add('files/' + $name) }
    $result.files = [object[]]@($listing.Valid | ForEach-Object { $_.Name })
    $result.ignored = [object[]]$ignored.ToArray()
    return $result
}

function Read-ExmitBlob {
    <# .SYNOPSIS readBlob: the saved copy files/<sha256> as base64 ($null when absent), checked against its name (image error otherwise). #>
    param([Parameter(Mandatory = $true)][hashtable]$Target, [Parameter(Mandatory = $true)][string]$Sha256)
    if (-not (Test-ExmitSha256Text $Sha256)) {
        throw (New-ExmitApplyError -Kind input -Message ('readBlob: "sha256" must be 64 lowercase hex digits: {0}' -f $Sha256))
    }
    $bytes = Read-ExmitSavedCopy -Target $Target -Sha256 $Sha256
    if ($null -eq $bytes) { return [ordered]@{ data = $null } }
    return [ordered]@{ data = [System.Convert]::ToBase64String($bytes) }
}

function Read-ExmitSavedCopy {
    <# .SYNOPSIS The bytes of the saved copy files/<sha256>, verified against the name; $null when absent. #>
    param([Parameter(Mandatory = $true)][hashtable]$Target, [Parameter(Mandatory = $true)][string]$Sha256)
    $state = Get-ExmitStateDirectory -Target $Target
    if ($null -eq $state) { return $null }
    $files = Get-ExmitStateSubdirectory -StateDirectory $state -Name 'files'
    if ($null -eq $files) { return $null }
    $path = [System.IO.Path]::Combine($files, $Sha256)
    $bytes = Read-ExmitStateFile -Path $path -MaxBytes $script:ExmitLimits.FileBytes
    if ($null -eq $bytes) { return $null }
    $actual = Get-ExmitSha256Hex $bytes
    if ($actual -cne $Sha256) {
        throw (New-ExmitApplyError -Kind image -File $path -Message ('{0}: the saved copy does not match its name (its sha256 is {1})' -f $path, $actual))
    }
    return , $bytes
}

function Save-ExmitCopy {
    <# .SYNOPSIS Saves bytes as files/<sha256> (atomically); skipped when a copy with the right hash is there. Returns the hash. #>
    param([Parameter(Mandatory = $true)][string]$FilesDirectory, [Parameter(Mandatory = $true)][AllowEmptyCollection()][byte[]]$Bytes)
    $sha = Get-ExmitSha256Hex $Bytes
    $path = [System.IO.Path]::Combine($FilesDirectory, $sha)
    $entry = Get-ExmitEntryInfo $path
    if ($null -ne $entry) {
        if (Test-ExmitLinkEntry $entry) {
            throw (New-ExmitApplyError -Kind image -File $path -Message ('{0} is a link: refused (exmit never follows a link in its state folder)' -f $path))
        }
        if ($entry -is [System.IO.FileInfo] -and (Get-ExmitFileSha256 $path) -ceq $sha) { return $sha }
    }
    Write-ExmitFileAtomic -Path $path -Bytes $Bytes
    return $sha
}
