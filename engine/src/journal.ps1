# The run journal: journal/<runId>.jsonl in the state folder, UTF-8 without BOM, one JSON object per
# line, each line flushed to disk before the engine goes on.

function Get-ExmitUtcStamp {
    <# .SYNOPSIS The current UTC time as ISO 8601 with milliseconds (2026-12-01T05:15:00.000Z). #>
    return [System.DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ss.fffZ', [System.Globalization.CultureInfo]::InvariantCulture)
}

function Open-ExmitJournal {
    <# .SYNOPSIS Creates journal/<RunId>.jsonl (never over an existing one) and returns @{ Path; Name; Stream }. #>
    param([Parameter(Mandatory = $true)][string]$StateDirectory, [Parameter(Mandatory = $true)][string]$RunId)
    $directory = Get-ExmitStateSubdirectory -StateDirectory $StateDirectory -Name 'journal' -Create
    $name = $RunId + '.jsonl'
    $path = [System.IO.Path]::Combine($directory, $name)
    if ($null -ne (Get-ExmitEntryInfo $path)) {
        throw (New-ExmitApplyError -Kind input -File $path -Message ('{0}: a journal for run {1} already exists (each run has its own id)' -f $path, $RunId))
    }
    try {
        $stream = New-Object System.IO.FileStream $path, ([System.IO.FileMode]::CreateNew), ([System.IO.FileAccess]::Write), ([System.IO.FileShare]::Read)
    } catch {
        throw (New-ExmitApplyError -Kind environment -File $path -Message ('{0}: the journal cannot be created: {1}' -f $path, (Get-ExmitErrorMessage $_)))
    }
    return @{ Path = $path; Name = $name; Stream = $stream }
}

function Write-ExmitJournalLine {
    <# .SYNOPSIS Appends one compressed JSON line to the journal and flushes it to disk. #>
    param([Parameter(Mandatory = $true)][hashtable]$Journal, [Parameter(Mandatory = $true)]$Entry)
    $json = ConvertTo-Json -InputObject $Entry -Depth 64 -Compress
    $bytes = (New-Object System.Text.UTF8Encoding $false).GetBytes($json + "`n")
    $Journal.Stream.Write($bytes, 0, $bytes.Length)
    $Journal.Stream.Flush($true)
}

function Close-ExmitJournal {
    <# .SYNOPSIS Closes the journal's stream (safe to call twice). #>
    param([hashtable]$Journal)
    if ($null -ne $Journal -and $null -ne $Journal.Stream) {
        $Journal.Stream.Dispose()
        $Journal.Stream = $null
    }
}
