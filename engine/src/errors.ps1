# Errors: New-ExmitError makes the exception that the protocol answers as {kind, message, file}.

function New-ExmitError {
    <#
    .SYNOPSIS Makes the exception that the protocol turns into {"ok":false,"error":{kind,message,file}}.
    .DESCRIPTION Kinds (docs/architecture.md): image, input, environment, policy, lock, conflict, step,
    fault, internal. The TypeScript side maps each kind to an exit code and a hint.
    #>
    param(
        [Parameter(Mandatory = $true)][ValidateSet('image', 'input', 'environment', 'policy', 'lock', 'conflict', 'step', 'fault', 'internal')][string]$Kind,
        [Parameter(Mandatory = $true)][string]$Message,
        [string]$File
    )
    $oneLine = ($Message -replace '[\r\n]+', ' ').Trim()
    $exception = New-Object System.InvalidOperationException $oneLine
    $exception.Data['exmitKind'] = $Kind
    if ($File) {
        $exception.Data['exmitFile'] = $File
    } else {
        $exception.Data['exmitFile'] = $null
    }
    return $exception
}

function Test-ExmitError {
    <# .SYNOPSIS True when an exception was made by New-ExmitError. #>
    param($Exception)
    if ($null -eq $Exception) { return $false }
    return ($null -ne $Exception.Data -and $Exception.Data.Contains('exmitKind'))
}

function ConvertTo-ExmitErrorObject {
    <# .SYNOPSIS The protocol's error object for any error record or exception. #>
    param($ErrorRecord)
    $exception = $ErrorRecord
    if ($ErrorRecord -is [System.Management.Automation.ErrorRecord]) {
        $exception = $ErrorRecord.Exception
    }
    # Unwrap exceptions that PowerShell wraps around ours (method invocation, runtime).
    $probe = $exception
    while ($null -ne $probe) {
        if (Test-ExmitError $probe) { $exception = $probe; break }
        $probe = $probe.InnerException
    }
    $result = [ordered]@{ kind = 'internal'; message = ''; file = $null }
    if (Test-ExmitError $exception) {
        $kind = [string]$exception.Data['exmitKind']
        if ($script:ExmitErrorKinds -ccontains $kind) { $result.kind = $kind }
        $result.file = $exception.Data['exmitFile']
    }
    $message = [string]$exception.Message
    $result.message = ($message -replace '[\r\n]+', ' ').Trim()
    # apply's errors carry details: which step failed and whether the run was undone.
    $details = Get-ExmitErrorDetails $ErrorRecord
    if ($null -ne $details) { $result.details = $details }
    return $result
}
