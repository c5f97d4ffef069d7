# The request table: every op's fields in one place, checked by Assert-ExmitRequest before dispatch.
#
# Field specs: Name; Type (string, array-of-string, object, base64, bool, target); Required;
# Allowed (the values a string may take; for a target, the kinds it may have); NonEmpty (strings, and
# the strings of an array, must not be empty). Fields not in the table are ignored. WindowsOnly: the op
# is refused off Windows before its fields are looked at.

$script:ExmitRequestTable = @{
    preflight       = @{ Fields = @(@{ Name = 'target'; Type = 'target' }) }
    gather          = @{
        Fields = @(
            @{ Name = 'target'; Type = 'target' },
            @{ Name = 'services'; Type = 'array-of-string' }
        )
    }
    readFiles       = @{
        Fields = @(
            @{ Name = 'target'; Type = 'target' },
            @{ Name = 'paths'; Type = 'array-of-string'; Required = $true }
        )
    }
    collect         = @{
        Fields = @(
            @{ Name = 'target'; Type = 'target'; Allowed = @('local') },
            @{ Name = 'out'; Type = 'string'; Required = $true; NonEmpty = $true }
        )
    }
    whoami          = @{ WindowsOnly = $true; Fields = @() }
    security        = @{
        WindowsOnly = $true
        Fields      = @(@{ Name = 'paths'; Type = 'array-of-string'; Required = $true; NonEmpty = $true })
    }
    createSecure    = @{
        WindowsOnly = $true
        Fields      = @(
            @{ Name = 'path'; Type = 'string'; Required = $true; NonEmpty = $true },
            @{ Name = 'kind'; Type = 'string'; Required = $true; Allowed = @('folder', 'file') },
            @{ Name = 'sddl'; Type = 'string'; Required = $true },
            @{ Name = 'data'; Type = 'base64' }
        )
    }
    winHttpSettings = @{ Fields = @() }
    # apply and rollback (engine/src/apply.ps1, lock.ps1, state-store.ps1, journal.ps1)
    lock            = @{
        Fields = @(
            @{ Name = 'target'; Type = 'target'; Required = $true },
            @{ Name = 'runId'; Type = 'string'; Required = $true; NonEmpty = $true }
        )
    }
    unlock          = @{
        Fields = @(
            @{ Name = 'target'; Type = 'target'; Required = $true },
            @{ Name = 'runId'; Type = 'string'; Required = $true; NonEmpty = $true }
        )
    }
    readState       = @{ Fields = @(@{ Name = 'target'; Type = 'target'; Required = $true }) }
    readBlob        = @{
        Fields = @(
            @{ Name = 'target'; Type = 'target'; Required = $true },
            @{ Name = 'sha256'; Type = 'string'; Required = $true; NonEmpty = $true }
        )
    }
    execute         = @{
        Fields = @(
            @{ Name = 'target'; Type = 'target'; Required = $true },
            @{ Name = 'runId'; Type = 'string'; Required = $true; NonEmpty = $true },
            @{ Name = 'mode'; Type = 'string'; Required = $true; Allowed = @('apply', 'rollback', 'repair', 'undo') },
            @{ Name = 'steps'; Type = 'array'; Required = $true },
            @{ Name = 'ledger'; Type = 'object' },
            @{ Name = 'fault'; Type = 'object' }
        )
    }
    exit            = @{ Fields = @() }
}

# What each type must be, in the words of an error message.
$script:ExmitFieldTypeWords = @{
    'string'          = 'a string'
    'array-of-string' = 'an array of strings'
    'array'           = 'an array'
    'object'          = 'an object'
    'base64'          = 'a base64 string'
    'bool'            = 'true or false'
    'target'          = 'an object {"kind":"local"} or {"kind":"image","path":"..."}'
}

function Join-ExmitWords {
    <# .SYNOPSIS 'a', 'a or b', 'a, b or c'. #>
    param([string[]]$Words)
    if ($Words.Count -le 1) { return ($Words -join '') }
    return ((($Words | Select-Object -First ($Words.Count - 1)) -join ', ') + ' or ' + $Words[$Words.Count - 1])
}

function Test-ExmitFieldType {
    <# .SYNOPSIS True when a JSON value has the type of a field spec (values of a target are checked apart). #>
    param($Value, [string]$Type)
    switch -CaseSensitive ($Type) {
        'string' { return ($Value -is [string]) }
        'bool' { return ($Value -is [bool]) }
        'object' { return ($Value -is [System.Management.Automation.PSCustomObject] -or $Value -is [System.Collections.IDictionary]) }
        'target' { return ($Value -is [System.Management.Automation.PSCustomObject] -or $Value -is [System.Collections.IDictionary]) }
        'array' { return (-not ($Value -is [string]) -and $Value -is [System.Collections.IList]) }
        'array-of-string' {
            if ($Value -is [string] -or -not ($Value -is [System.Collections.IList])) { return $false }
            foreach ($item in $Value) { if (-not ($item -is [string])) { return $false } }
            return $true
        }
        'base64' {
            if (-not ($Value -is [string])) { return $false }
            try {
                $null = [System.Convert]::FromBase64String($Value)
                return $true
            } catch {
                return $false
            }
        }
    }
    throw (New-ExmitError -Kind internal -Message ('the request table names an unknown field type: {0}' -f $Type))
}

function Assert-ExmitTargetField {
    <# .SYNOPSIS Checks a target object: kind local or image (or the kinds Allowed), and an image's path. #>
    param([string]$Op, $Target, [string[]]$Allowed)
    $kind = Get-ExmitField $Target 'kind'
    $kinds = @('local', 'image')
    if ($null -ne $Allowed -and $Allowed.Count -gt 0) { $kinds = $Allowed }
    if (-not ($kind -is [string]) -or $kinds -cnotcontains $kind) {
        throw (New-ExmitError -Kind input -Message ('{0}: "target.kind" must be {1}' -f $Op, (Join-ExmitWords $kinds)))
    }
    if ($kind -ceq 'image') {
        $path = Get-ExmitField $Target 'path'
        if (-not ($path -is [string]) -or $path.Length -eq 0) {
            throw (New-ExmitError -Kind input -Message ('{0}: "target.path" must be the image folder for an image target' -f $Op))
        }
    }
}

function Assert-ExmitRequest {
    <#
    .SYNOPSIS Checks a request against the request table; an input error naming the op and the field
    when an op is unknown, a required field is missing, or a field has the wrong type or value.
    #>
    param([Parameter(Mandatory = $true)]$Request)
    $op = Get-ExmitField $Request 'op'
    if (-not ($op -is [string]) -or $op.Length -eq 0) {
        throw (New-ExmitError -Kind input -Message 'the request has no "op"')
    }
    if (-not $script:ExmitRequestTable.ContainsKey($op) -or -not ($script:ExmitRequestTable.Keys -ccontains $op)) {
        throw (New-ExmitError -Kind input -Message ('unknown op: {0}' -f $op))
    }
    $spec = $script:ExmitRequestTable[$op]
    if ($spec.ContainsKey('WindowsOnly') -and $spec.WindowsOnly -and -not (Test-ExmitWindows)) {
        throw (New-ExmitError -Kind input -Message ('{0}: Windows only' -f $op))
    }
    foreach ($field in $spec.Fields) {
        $name = $field.Name
        $value = Get-ExmitField $Request $name
        $words = $script:ExmitFieldTypeWords[$field.Type]
        if ($null -eq $value) {
            if ($field.ContainsKey('Required') -and $field.Required) {
                throw (New-ExmitError -Kind input -Message ('{0}: "{1}" is required ({2})' -f $op, $name, $words))
            }
            continue
        }
        if (-not (Test-ExmitFieldType -Value $value -Type $field.Type)) {
            throw (New-ExmitError -Kind input -Message ('{0}: "{1}" must be {2}' -f $op, $name, $words))
        }
        $allowed = $null
        if ($field.ContainsKey('Allowed')) { $allowed = [string[]]$field.Allowed }
        if ($field.Type -ceq 'target') {
            Assert-ExmitTargetField -Op $op -Target $value -Allowed $allowed
            continue
        }
        if ($null -ne $allowed -and $allowed -cnotcontains $value) {
            throw (New-ExmitError -Kind input -Message ('{0}: "{1}" must be {2}' -f $op, $name, (Join-ExmitWords $allowed)))
        }
        if ($field.ContainsKey('NonEmpty') -and $field.NonEmpty) {
            foreach ($item in @($value)) {
                if ($item.Length -eq 0) {
                    throw (New-ExmitError -Kind input -Message ('{0}: "{1}" must not be empty or hold an empty string' -f $op, $name))
                }
            }
        }
    }
}
