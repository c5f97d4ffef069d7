# The protocol: request lines in, answer and event lines out; the dispatcher.

# The request being served and where its events go (set by Invoke-ExmitLine and Start-ExmitEngine).
$script:ExmitCurrentId = $null
$script:ExmitEventWriter = $null

function Get-ExmitTarget {
    <# .SYNOPSIS The request's target as {kind, path} (checked by Assert-ExmitRequest); local when absent. #>
    param($Request)
    $target = Get-ExmitField $Request 'target'
    if ($null -eq $target -or (Get-ExmitField $target 'kind') -cne 'image') { return @{ kind = 'local'; path = $null } }
    return @{ kind = 'image'; path = [string](Get-ExmitField $target 'path') }
}

function Invoke-ExmitRequest {
    <#
    .SYNOPSIS Runs one protocol request and returns its result object; throws (New-ExmitError) on failure.
    .DESCRIPTION The dispatcher that the stdin loop calls, and that Invoke-Command can call per phase.
    Fields are checked first, in one place (Assert-ExmitRequest and the request table).
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)]$Request)
    Assert-ExmitRequest -Request $Request
    $op = [string](Get-ExmitField $Request 'op')
    switch -CaseSensitive ($op) {
        'preflight' {
            return (Get-ExmitPreflight)
        }
        'gather' {
            $target = Get-ExmitTarget $Request
            $services = $null
            $wanted = Get-ExmitField $Request 'services'
            if ($null -ne $wanted) { $services = [string[]]@($wanted) }
            if ($target.kind -eq 'image') { return (Get-ExmitImageFacts -Path $target.path -Services $services) }
            return (Get-ExmitLocalFacts -Services $services)
        }
        'readFiles' {
            $target = Get-ExmitTarget $Request
            $paths = Get-ExmitField $Request 'paths'
            $paths = @($paths)
            if ($target.kind -eq 'image') { return (Read-ExmitImageFiles -Path $target.path -Paths $paths) }
            return (Read-ExmitLocalFiles -Paths $paths)
        }
        'collect' {
            return (Invoke-ExmitCollect -Out ([string](Get-ExmitField $Request 'out')))
        }
        'whoami' {
            return (Invoke-ExmitLiveSource -Name 'the current Windows identity' -Script { Get-ExmitIdentity })
        }
        'security' {
            $paths = Get-ExmitField $Request 'paths'
            return (Get-ExmitPathSecurity -Paths ([string[]]@($paths)))
        }
        'createSecure' {
            $bytes = [byte[]]@()
            $data = Get-ExmitField $Request 'data'
            if ($null -ne $data) { $bytes = [System.Convert]::FromBase64String($data) }
            return (Invoke-ExmitCreateSecure -Path (Get-ExmitField $Request 'path') -Kind (Get-ExmitField $Request 'kind') -Sddl (Get-ExmitField $Request 'sddl') -Bytes $bytes)
        }
        'winHttpSettings' {
            if (-not (Test-ExmitWindows)) { return [ordered]@{ value = $null } }
            $bytes = Invoke-ExmitLiveSource -Name 'the WinHTTP proxy setting (WinHttpSettings)' -Script { Get-ExmitWinHttpSettings }
            if ($null -eq $bytes) { return [ordered]@{ value = $null } }
            return [ordered]@{ value = [System.Convert]::ToBase64String([byte[]]$bytes) }
        }
        { $_ -ceq 'lock' -or $_ -ceq 'unlock' -or $_ -ceq 'readState' -or $_ -ceq 'readBlob' -or $_ -ceq 'execute' } {
            $operations = Get-ExmitApplyOperations
            return (& $operations[$op].Run $Request)
        }
        'exit' {
            return [ordered]@{}
        }
    }
    throw (New-ExmitError -Kind internal -Message ('the request table has an op without a handler: {0}' -f $op))
}

function ConvertTo-ExmitJsonLine {
    <# .SYNOPSIS One compressed JSON line. #>
    param($InputObject)
    return (ConvertTo-Json -InputObject $InputObject -Depth 12 -Compress)
}

function Write-ExmitEvent {
    <#
    .SYNOPSIS Writes a progress event {"id":N,"event":{"kind":"progress","message":...}} for the request
    being served; the TypeScript side resets that request's timer. Without one (Pester), a verbose message.
    #>
    param([Parameter(Mandatory = $true)][string]$Message)
    $oneLine = ($Message -replace '[\r\n]+', ' ').Trim()
    if ($null -eq $script:ExmitEventWriter -or $null -eq $script:ExmitCurrentId) {
        Write-Verbose $oneLine
        return
    }
    $script:ExmitEventWriter.WriteLine((ConvertTo-ExmitJsonLine ([ordered]@{ id = $script:ExmitCurrentId; event = [ordered]@{ kind = 'progress'; message = $oneLine } })))
}

function Test-ExmitRequestId {
    <# .SYNOPSIS True for a request id: a positive integer. #>
    param($Id)
    if ($Id -is [int] -or $Id -is [long]) { return ($Id -gt 0) }
    return $false
}

function Invoke-ExmitLine {
    <#
    .SYNOPSIS Answers one request line: returns @{ Json = the answer line; Exit = whether to stop }.
    .DESCRIPTION Events of the request (Write-ExmitEvent) go out before the answer, with its id. An exit
    request stops the engine even when it is malformed otherwise.
    #>
    param([string]$Line)
    $id = $null
    $isExit = $false
    try {
        $text = $Line.TrimStart([char]0xFEFF)
        try {
            $request = ConvertFrom-Json -InputObject $text
        } catch {
            throw (New-ExmitError -Kind input -Message ('the request line is not valid JSON: {0}' -f $_.Exception.Message))
        }
        if ($null -eq $request -or -not ($request -is [System.Management.Automation.PSCustomObject])) {
            throw (New-ExmitError -Kind input -Message 'the request line is not a JSON object')
        }
        $isExit = ((Get-ExmitField $request 'op') -ceq 'exit')
        $givenId = Get-ExmitField $request 'id'
        if (-not (Test-ExmitRequestId $givenId)) {
            throw (New-ExmitError -Kind input -Message 'the request has no "id" (a positive integer)')
        }
        $id = $givenId
        $script:ExmitCurrentId = $id
        $result = Invoke-ExmitRequest -Request $request
        $response = [ordered]@{ id = $id; ok = $true; result = $result }
    } catch {
        $response = [ordered]@{ id = $id; ok = $false; error = (ConvertTo-ExmitErrorObject $_) }
    } finally {
        $script:ExmitCurrentId = $null
    }
    $json = $null
    try {
        $json = ConvertTo-ExmitJsonLine $response
    } catch {
        $failure = [ordered]@{ id = $id; ok = $false; error = [ordered]@{ kind = 'internal'; message = ('the response could not be serialised: ' + $_.Exception.Message); file = $null } }
        $json = ConvertTo-ExmitJsonLine $failure
    }
    return @{ Json = $json; Exit = $isExit }
}

function Start-ExmitEngine {
    <# .SYNOPSIS The stdin/stdout loop: events and one answer line per request line, until exit or end of input. #>
    $utf8 = New-Object System.Text.UTF8Encoding $false
    try {
        [Console]::InputEncoding = $utf8
        [Console]::OutputEncoding = $utf8
    } catch {
        [Console]::Error.WriteLine('exmit-engine: console encoding not set: ' + $_.Exception.Message)
    }
    $WarningPreference = 'SilentlyContinue'
    $InformationPreference = 'SilentlyContinue'
    $reader = New-Object System.IO.StreamReader ([Console]::OpenStandardInput()), $utf8, $true
    $writer = New-Object System.IO.StreamWriter ([Console]::OpenStandardOutput()), $utf8
    $writer.AutoFlush = $true
    $writer.NewLine = "`n"
    # Stray host output (a module's Write-Host, say) goes to stderr: stdout carries the protocol only.
    [Console]::SetOut([Console]::Error)
    $script:ExmitEventWriter = $writer
    try {
        while ($true) {
            $line = $reader.ReadLine()
            if ($null -eq $line) { break }
            if ($line.Trim().Length -eq 0) { continue }
            $answer = Invoke-ExmitLine -Line $line
            $writer.WriteLine($answer.Json)
            if ($answer.Exit) { break }
        }
    } finally {
        $script:ExmitEventWriter = $null
        # A normal run never leaves its lock behind, even when the TypeScript side could not unlock.
        Clear-ExmitHeldLocks
        $writer.Flush()
    }
}
