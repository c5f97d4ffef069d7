# apply / rollback / repair in the engine: the execute operation (re-check, save, journal, change,
# verify, undo on failure), the test fault hooks, and the table of the apply operations
# (Get-ExmitApplyOperations) that the dispatcher registers. The TypeScript side decides WHAT changes.

function Test-ExmitTestHooks {
    <# .SYNOPSIS True when the engine process may honour test fault hooks (EXMIT_TEST_HOOKS=1 in its environment). #>
    return ([System.Environment]::GetEnvironmentVariable('EXMIT_TEST_HOOKS') -eq '1')
}

function Get-ExmitFaultSpec {
    <# .SYNOPSIS The request's fault as @{ Step; When; Kind }, or $null; refused (input) when test hooks are off or it is malformed. #>
    param($Fault)
    if ($null -eq $Fault) { return $null }
    if (-not (Test-ExmitTestHooks)) {
        throw (New-ExmitApplyError -Kind input -Message 'execute: "fault" is a test hook, honoured only when the engine runs with EXMIT_TEST_HOOKS=1')
    }
    $step = Get-ExmitField $Fault 'step'
    $when = Get-ExmitField $Fault 'when'
    $kind = Get-ExmitField $Fault 'kind'
    if (-not ($step -is [int] -or $step -is [long]) -or $step -lt 0) { throw (New-ExmitApplyError -Kind input -Message 'execute: fault.step must be a step index (0 or more)') }
    if (@('before', 'after') -cnotcontains $when) { throw (New-ExmitApplyError -Kind input -Message 'execute: fault.when must be before or after') }
    if (@('fail', 'hang', 'exit') -cnotcontains $kind) { throw (New-ExmitApplyError -Kind input -Message 'execute: fault.kind must be fail, hang or exit') }
    return @{ Step = [long]$step; When = [string]$when; Kind = [string]$kind }
}

function Invoke-ExmitFault {
    <# .SYNOPSIS Fires the test fault when it is set for this step and moment: fail throws a `fault` error, hang sleeps forever, exit ends the process with code 9. #>
    param($Fault, [int]$Index, [string]$When)
    if ($null -eq $Fault -or $Fault.Step -ne $Index -or $Fault.When -cne $When) { return }
    switch ($Fault.Kind) {
        'fail' { throw (New-ExmitApplyError -Kind fault -Message ('test fault at step {0} ({1})' -f $Index, $When)) }
        'hang' { while ($true) { Start-Sleep -Seconds 3600 } }
        'exit' { [System.Environment]::Exit(9) }
    }
}

#region steps: validation and path resolution

function Find-ExmitStepEntry {
    <#
    .SYNOPSIS Resolves Segments[Index..] below Directory case-insensitively (every case variant is tried,
    as readFiles does) to an existing file (WantFile) or folder; any link on the way is refused.
    #>
    param([string]$Directory, [string[]]$Segments, [int]$Index, [bool]$WantFile, [string]$DisplayPath, [hashtable]$State)
    $isLast = ($Index -eq $Segments.Count - 1)
    foreach ($entry in (Find-ExmitDirectoryEntries -Directory $Directory -Name $Segments[$Index])) {
        $State.Visited++
        if ($State.Visited -gt 1000) {
            throw (New-ExmitApplyError -Kind image -File $DisplayPath -Message ('{0}: too many case variants of its folders in the image' -f $DisplayPath))
        }
        if (Test-ExmitLinkEntry $entry) {
            throw (New-ExmitApplyError -Kind image -File $DisplayPath -Message ('{0}: goes through a link in the image ({1}): refused, exmit writes no file through a link' -f $DisplayPath, $entry.FullName))
        }
        if ($isLast) {
            if ($WantFile -and $entry -is [System.IO.FileInfo]) { return $entry.FullName }
            if (-not $WantFile -and $entry -is [System.IO.DirectoryInfo]) { return $entry.FullName }
            continue
        }
        if (-not ($entry -is [System.IO.DirectoryInfo])) { continue }
        $found = Find-ExmitStepEntry -Directory $entry.FullName -Segments $Segments -Index ($Index + 1) -WantFile $WantFile -DisplayPath $DisplayPath -State $State
        if ($null -ne $found) { return $found }
    }
    return $null
}

function Resolve-ExmitImageStepPath {
    <#
    .SYNOPSIS The full path in the image of a file step's path: an export of the image root (services.xml,
    apppools.xml) or a Windows path under IMAGE/fs. A file that does not exist yet goes into its existing
    folder. Never outside the image, never through a link.
    #>
    param([Parameter(Mandatory = $true)][string]$Root, [Parameter(Mandatory = $true)][string]$StepPath)
    $exports = @('services.xml', 'apppools.xml')
    $state = @{ Visited = 0 }
    if ($exports -contains $StepPath.ToLowerInvariant()) {
        $found = Find-ExmitStepEntry -Directory $Root -Segments @($StepPath) -Index 0 -WantFile $true -DisplayPath $StepPath -State $state
        if ($null -eq $found) {
            if ($null -ne (Find-ExmitDirectoryEntry -Directory $Root -Name $StepPath)) {
                throw (New-ExmitApplyError -Kind image -File $StepPath -Message ('{0}: is not a file' -f $StepPath))
            }
            $found = [System.IO.Path]::Combine($Root, $StepPath.ToLowerInvariant())
        }
    } else {
        if ($StepPath -notmatch '^[A-Za-z]:[\\/]') {
            throw (New-ExmitApplyError -Kind input -Message ('a file step path must be services.xml, apppools.xml or an absolute Windows path: {0}' -f $StepPath))
        }
        $windowsSegments = Split-ExmitWindowsPath $StepPath
        $segments = [string[]](@('fs') + @($windowsSegments))
        $found = Find-ExmitStepEntry -Directory $Root -Segments $segments -Index 0 -WantFile $true -DisplayPath $StepPath -State $state
        if ($null -eq $found) {
            $parent = Find-ExmitStepEntry -Directory $Root -Segments ([string[]]($segments | Select-Object -First ($segments.Count - 1))) -Index 0 -WantFile $false -DisplayPath $StepPath -State $state
            if ($null -eq $parent) {
                throw (New-ExmitApplyError -Kind image -File $StepPath -Message ('{0}: its folder does not exist in the image' -f $StepPath))
            }
            $found = [System.IO.Path]::Combine($parent, $segments[$segments.Count - 1])
        }
    }
    $full = [System.IO.Path]::GetFullPath($found)
    if (-not (Test-ExmitPathInside -FullPath $full -Root $Root)) {
        throw (New-ExmitApplyError -Kind image -File $StepPath -Message ('{0} resolves outside the image: refused' -f $StepPath))
    }
    return $full
}

function Resolve-ExmitLocalStepPath {
    <# .SYNOPSIS The full path on this server of a file step's absolute Windows path; the file and its folder must not be links. #>
    param([Parameter(Mandatory = $true)][string]$StepPath)
    if (-not (Test-ExmitWindows)) {
        throw (New-ExmitApplyError -Kind input -Message ('a file step on this server needs Windows: {0}' -f $StepPath))
    }
    $segments = Split-ExmitWindowsPath $StepPath
    $full = $segments[0] + ':\' + (($segments | Select-Object -Skip 1) -join '\')
    foreach ($path in @($full, [System.IO.Path]::GetDirectoryName($full))) {
        $entry = Get-ExmitEntryInfo $path
        if ($null -ne $entry -and (Test-ExmitLinkEntry $entry)) {
            throw (New-ExmitApplyError -Kind environment -File $StepPath -Message ('{0}: {1} is a link: refused, exmit writes no file through a link' -f $StepPath, $path))
        }
    }
    if (-not [System.IO.Directory]::Exists([System.IO.Path]::GetDirectoryName($full))) {
        throw (New-ExmitApplyError -Kind environment -File $StepPath -Message ('{0}: its folder does not exist' -f $StepPath))
    }
    return $full
}

function Test-ExmitJsonObject {
    <# .SYNOPSIS True for a parsed JSON object (ConvertFrom-Json makes PSCustomObject). #>
    param($Value)
    return ($Value -is [System.Management.Automation.PSCustomObject])
}

function Get-ExmitStepText {
    <# .SYNOPSIS A required non-empty string field of a step (input error naming the step and field otherwise). #>
    param($Step, [string]$Name, [int]$Index, [switch]$AllowEmpty)
    $value = Get-ExmitField $Step $Name
    if (-not ($value -is [string]) -or (-not $AllowEmpty -and $value.Length -eq 0) -or $value -match '[\x00-\x1f]') {
        throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].{1} must be a non-empty string' -f $Index, $Name))
    }
    return $value
}

function Test-ExmitStateValues {
    <# .SYNOPSIS Checks a step's expect/to object: an object whose named fields hold allowed values (input error otherwise). #>
    param($Value, [string]$Field, [int]$Index, [hashtable]$Allowed, [switch]$Required)
    if ($null -eq $Value) {
        if ($Required) { throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].{1} is required' -f $Index, $Field)) }
        return
    }
    if (-not (Test-ExmitJsonObject $Value)) { throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].{1} must be an object' -f $Index, $Field)) }
    foreach ($property in $Value.PSObject.Properties) {
        if (-not $Allowed.ContainsKey($property.Name)) {
            throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].{1}.{2} is not a known field' -f $Index, $Field, $property.Name))
        }
        $ok = $false
        $rule = $Allowed[$property.Name]
        if ($rule -eq 'bool') { $ok = ($property.Value -is [bool]) }
        elseif ($rule -eq 'string') { $ok = ($property.Value -is [string]) }
        else { $ok = ($property.Value -is [string] -and @($rule) -ccontains $property.Value) }
        if (-not $ok) {
            throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].{1}.{2} has a value that is not allowed: {3}' -f $Index, $Field, $property.Name, $property.Value))
        }
    }
}

function ConvertTo-ExmitStep {
    <# .SYNOPSIS One validated step as a hashtable (Kind, Index, Raw, and per kind its fields; file steps resolved and their new bytes checked). #>
    param([hashtable]$Target, $Step, [int]$Index, [string]$ImageRoot)
    if (-not (Test-ExmitJsonObject $Step)) { throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}] must be an object' -f $Index)) }
    $kind = Get-ExmitField $Step 'kind'
    $result = @{ Kind = $kind; Index = $Index; Raw = $Step }
    $live = @('service', 'appPool', 'iisElement', 'globalModule')
    if ($live -ccontains $kind -and $Target.kind -eq 'image') {
        throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}] is a {1} step, which only a live server takes (an image changes its files)' -f $Index, $kind))
    }
    switch -CaseSensitive ($kind) {
        'file' {
            $path = Get-ExmitStepText $Step 'path' $Index
            $before = Get-ExmitField $Step 'before'
            if ($null -ne $before -and -not (Test-ExmitSha256Text $before)) {
                throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].before must be null or 64 lowercase hex digits' -f $Index))
            }
            $after = Get-ExmitField $Step 'after'
            $afterBytes = $null
            $afterSha = $null
            if ($null -ne $after) {
                $data = Get-ExmitField $after 'data'
                $afterSha = Get-ExmitField $after 'sha256'
                if (-not ($data -is [string]) -or -not (Test-ExmitSha256Text $afterSha)) {
                    throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].after must be null or {{data: base64, sha256: hex}}' -f $Index))
                }
                try {
                    $afterBytes = [System.Convert]::FromBase64String($data)
                } catch {
                    throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].after.data is not base64' -f $Index))
                }
                if ((Get-ExmitSha256Hex $afterBytes) -cne $afterSha) {
                    throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].after.sha256 is not the sha256 of after.data ({1})' -f $Index, $path))
                }
            }
            if ($Target.kind -eq 'image') {
                $full = Resolve-ExmitImageStepPath -Root $ImageRoot -StepPath $path
            } else {
                $full = Resolve-ExmitLocalStepPath -StepPath $path
            }
            $result.Path = $path
            $result.FullPath = $full
            $result.Before = $before
            $result.AfterBytes = $afterBytes
            $result.AfterSha = $afterSha
        }
        'service' {
            $result.Name = Get-ExmitStepText $Step 'name' $Index
            $rules = @{ status = @('Running', 'Stopped', 'Paused', 'StartPending', 'StopPending', 'ContinuePending', 'PausePending'); startType = @('Automatic', 'Manual', 'Disabled', 'Boot', 'System'); delayedStart = 'bool' }
            $result.Expect = Get-ExmitField $Step 'expect'
            Test-ExmitStateValues -Value $result.Expect -Field 'expect' -Index $Index -Allowed $rules -Required
            $result.To = Get-ExmitField $Step 'to'
            Test-ExmitStateValues -Value $result.To -Field 'to' -Index $Index -Allowed @{ status = @('Running', 'Stopped'); startType = @('Automatic', 'Manual', 'Disabled'); delayedStart = 'bool' } -Required
        }
        'appPool' {
            $result.Name = Get-ExmitStepText $Step 'name' $Index
            $result.Expect = Get-ExmitField $Step 'expect'
            Test-ExmitStateValues -Value $result.Expect -Field 'expect' -Index $Index -Allowed @{ state = @('Starting', 'Started', 'Stopping', 'Stopped', 'Unknown'); autoStart = 'bool' } -Required
            $result.To = Get-ExmitField $Step 'to'
            Test-ExmitStateValues -Value $result.To -Field 'to' -Index $Index -Allowed @{ state = @('Started', 'Stopped'); autoStart = 'bool' } -Required
        }
        'iisElement' {
            $op = Get-ExmitField $Step 'op'
            if (@('add', 'remove') -cnotcontains $op) { throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].op must be add or remove' -f $Index)) }
            $result.Op = $op
            $result.Location = Get-ExmitStepText $Step 'location' $Index -AllowEmpty
            $result.Section = Get-ExmitStepText $Step 'section' $Index
            $key = Get-ExmitField $Step 'key'
            if (-not (Test-ExmitJsonObject $key) -or @($key.PSObject.Properties).Count -eq 0) {
                throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].key must be an object with at least one attribute' -f $Index))
            }
            $result.Key = $key
            $element = Get-ExmitField $Step 'element'
            if ($op -ceq 'add' -and (-not (Test-ExmitJsonObject $element) -or -not ((Get-ExmitField $element 'name') -is [string]))) {
                throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].element must be {{name, attributes, children}}' -f $Index))
            }
            $result.Element = $element
            $position = Get-ExmitField $Step 'index'
            $result.Position = -1
            if ($null -ne $position) {
                if (-not ($position -is [int] -or $position -is [long]) -or $position -lt 0) { throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].index must be 0 or more' -f $Index)) }
                $result.Position = [int]$position
            }
            $result.Before = Get-ExmitField $Step 'before'
            if ($null -ne $result.Before -and -not (Test-ExmitSha256Text $result.Before)) {
                throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].before must be null or 64 lowercase hex digits' -f $Index))
            }
        }
        'globalModule' {
            $op = Get-ExmitField $Step 'op'
            if (@('add', 'remove') -cnotcontains $op) { throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].op must be add or remove' -f $Index)) }
            $result.Op = $op
            $result.Name = Get-ExmitStepText $Step 'name' $Index
            $result.Image = $null
            if ($op -ceq 'add') { $result.Image = Get-ExmitStepText $Step 'image' $Index }
            $result.Expect = Get-ExmitField $Step 'expect'
            Test-ExmitStateValues -Value $result.Expect -Field 'expect' -Index $Index -Allowed @{ present = 'bool'; image = 'string' }
        }
        default {
            throw (New-ExmitApplyError -Kind input -Message ('execute: steps[{0}].kind is not a known step kind: {1}' -f $Index, $kind))
        }
    }
    return $result
}

function Get-ExmitStepDescription {
    <# .SYNOPSIS A short text for a step, for progress events and messages ("write services.xml", "service MSExchangeHM to Stopped, Disabled"). #>
    param([hashtable]$Step)
    switch ($Step.Kind) {
        'file' {
            if ($null -eq $Step.AfterBytes) { return ('delete ' + $Step.Path) }
            if ($null -eq $Step.Before) { return ('create ' + $Step.Path) }
            return ('write ' + $Step.Path)
        }
        'service' {
            $parts = @()
            foreach ($name in 'status', 'startType') { if ($null -ne (Get-ExmitField $Step.To $name)) { $parts += [string](Get-ExmitField $Step.To $name) } }
            $delayed = Get-ExmitField $Step.To 'delayedStart'
            if ($delayed -eq $true) { $parts += 'delayed start' } elseif ($delayed -eq $false) { $parts += 'no delayed start' }
            return ('service {0} to {1}' -f $Step.Name, ($parts -join ', '))
        }
        'appPool' {
            $parts = @()
            if ($null -ne (Get-ExmitField $Step.To 'state')) { $parts += [string](Get-ExmitField $Step.To 'state') }
            if ($null -ne (Get-ExmitField $Step.To 'autoStart')) { $parts += ('autoStart ' + ([string](Get-ExmitField $Step.To 'autoStart')).ToLowerInvariant()) }
            return ('app pool {0} to {1}' -f $Step.Name, ($parts -join ', '))
        }
        'iisElement' {
            $keyText = (@($Step.Key.PSObject.Properties | ForEach-Object { [string]$_.Value }) -join ' ')
            return ('{0} {1} "{2}" in {3} at {4}' -f $Step.Op, 'element', $keyText, $Step.Section, $Step.Location)
        }
        'globalModule' { return ('{0} global module {1}' -f $Step.Op, $Step.Name) }
    }
    return [string]$Step.Kind
}

function ConvertTo-ExmitJournalStep {
    <# .SYNOPSIS A step as journaled in `begin`: as sent, except that a file step keeps only the sha256 of its new bytes (the bytes are in the plan's source). #>
    param([hashtable]$Step)
    if ($Step.Kind -ne 'file') { return $Step.Raw }
    $after = $null
    if ($null -ne $Step.AfterSha) { $after = [ordered]@{ sha256 = $Step.AfterSha } }
    return [ordered]@{ kind = 'file'; path = $Step.Path; before = $Step.Before; after = $after }
}

#endregion

#region steps: re-check, change, undo

function Get-ExmitStepPrior {
    <# .SYNOPSIS Re-checks a step's resource just before the change and returns @{ Prior = the state to journal; Bytes = a file's prior bytes }; a `conflict` error when it differs from the plan. #>
    param([hashtable]$Step)
    switch ($Step.Kind) {
        'file' {
            $bytes = $null
            $sha = $null
            if ([System.IO.File]::Exists($Step.FullPath)) {
                $bytes = Read-ExmitFileBytes -Path $Step.FullPath -MaxBytes $script:ExmitLimits.FileBytes -DisplayName $Step.Path -Kind environment
                $sha = Get-ExmitSha256Hex $bytes
            } elseif ([System.IO.Directory]::Exists($Step.FullPath)) {
                throw (New-ExmitApplyError -Kind conflict -File $Step.Path -Message ('{0} is a folder, the plan expected a file' -f $Step.Path))
            }
            if ($sha -cne $Step.Before) {
                if ($null -eq $Step.Before) {
                    $text = '{0} exists (sha256 {1}) but the plan expected no file there'
                } elseif ($null -eq $sha) {
                    $text = '{0} does not exist but the plan expected sha256 {2}'
                } else {
                    $text = '{0} changed since the plan: its sha256 is {1}, the plan expected {2}'
                }
                throw (New-ExmitApplyError -Kind conflict -File $Step.Path -Message ($text -f $Step.Path, $sha, $Step.Before))
            }
            return @{ Prior = [ordered]@{ sha256 = $sha }; Bytes = $bytes }
        }
        'service' {
            $current = Get-ExmitServiceSnapshot -Name $Step.Name
            if ($null -eq $current) { throw (New-ExmitApplyError -Kind conflict -Message ('service {0} does not exist' -f $Step.Name)) }
            $differences = Compare-ExmitState -Current $current -Wanted $Step.Expect
            if ($differences.Count -gt 0) {
                throw (New-ExmitApplyError -Kind conflict -Message ('service {0} changed since the plan: {1}' -f $Step.Name, ($differences -join '; ')))
            }
            return @{ Prior = $current; Bytes = $null }
        }
        'appPool' {
            $current = Get-ExmitAppPoolSnapshot -Name $Step.Name
            if ($null -eq $current) { throw (New-ExmitApplyError -Kind conflict -Message ('application pool {0} does not exist' -f $Step.Name)) }
            $differences = Compare-ExmitState -Current $current -Wanted $Step.Expect
            if ($differences.Count -gt 0) {
                throw (New-ExmitApplyError -Kind conflict -Message ('application pool {0} changed since the plan: {1}' -f $Step.Name, ($differences -join '; ')))
            }
            return @{ Prior = $current; Bytes = $null }
        }
        'iisElement' {
            $found = Get-ExmitIisElement -Location $Step.Location -Section $Step.Section -Key $Step.Key
            $sha = Get-ExmitApplicationHostHash
            $description = Get-ExmitStepDescription $Step
            if ($Step.Op -ceq 'add' -and $null -ne $found) { throw (New-ExmitApplyError -Kind conflict -Message ('{0}: the element is already there' -f $description)) }
            if ($Step.Op -ceq 'remove' -and $null -eq $found) { throw (New-ExmitApplyError -Kind conflict -Message ('{0}: the element is not there' -f $description)) }
            if ($null -ne $Step.Before -and $sha -cne $Step.Before) {
                throw (New-ExmitApplyError -Kind conflict -Message ('{0}: applicationHost.config changed since the plan: its sha256 is {1}, the plan expected {2}' -f $description, $sha, $Step.Before))
            }
            $prior = [ordered]@{ sha256 = $sha; present = ($null -ne $found) }
            if ($null -ne $found) {
                $prior.index = $found.index
                $prior.element = $found.element
            }
            return @{ Prior = $prior; Bytes = $null }
        }
        'globalModule' {
            $found = Get-ExmitGlobalModule -Name $Step.Name
            $sha = Get-ExmitApplicationHostHash
            if ($Step.Op -ceq 'add' -and $null -ne $found) { throw (New-ExmitApplyError -Kind conflict -Message ('global module {0} is already there' -f $Step.Name)) }
            if ($Step.Op -ceq 'remove' -and $null -eq $found) { throw (New-ExmitApplyError -Kind conflict -Message ('global module {0} is not there' -f $Step.Name)) }
            $prior = [ordered]@{ sha256 = $sha; present = ($null -ne $found); image = $null; index = $null }
            if ($null -ne $found) {
                $prior.image = $found.image
                $prior.index = $found.index
            }
            $differences = Compare-ExmitState -Current $prior -Wanted $Step.Expect
            if ($differences.Count -gt 0) {
                throw (New-ExmitApplyError -Kind conflict -Message ('global module {0} changed since the plan: {1}' -f $Step.Name, ($differences -join '; ')))
            }
            return @{ Prior = $prior; Bytes = $null }
        }
    }
    throw (New-ExmitApplyError -Kind internal -Message ('no re-check for step kind {0}' -f $Step.Kind))
}

function Invoke-ExmitStepChange {
    <# .SYNOPSIS Makes one step's change and verifies it; returns the resulting state to journal (a `step` error when it is not as planned). #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([hashtable]$Step)
    $description = Get-ExmitStepDescription $Step
    if (-not $PSCmdlet.ShouldProcess($description, 'change')) { return $null }
    switch ($Step.Kind) {
        'file' {
            if ($null -eq $Step.AfterBytes) {
                if ([System.IO.File]::Exists($Step.FullPath)) { [System.IO.File]::Delete($Step.FullPath) }
            } else {
                Write-ExmitFileAtomic -Path $Step.FullPath -Bytes $Step.AfterBytes
            }
            $sha = Get-ExmitFileSha256 $Step.FullPath
            if ($sha -cne $Step.AfterSha) {
                throw (New-ExmitApplyError -Kind step -File $Step.Path -Message ('{0}: after writing, its sha256 is {1}, not {2}' -f $Step.Path, $sha, $Step.AfterSha))
            }
            return [ordered]@{ sha256 = $sha }
        }
        'service' {
            Set-ExmitServiceState -Name $Step.Name -To $Step.To
            $after = Get-ExmitServiceSnapshot -Name $Step.Name
            $differences = Compare-ExmitState -Current $after -Wanted $Step.To
            if ($differences.Count -gt 0) { throw (New-ExmitApplyError -Kind step -Message ('service {0} is not as set: {1}' -f $Step.Name, ($differences -join '; '))) }
            return $after
        }
        'appPool' {
            Set-ExmitAppPoolState -Name $Step.Name -To $Step.To
            $after = Get-ExmitAppPoolSnapshot -Name $Step.Name
            $differences = Compare-ExmitState -Current $after -Wanted $Step.To
            if ($differences.Count -gt 0) { throw (New-ExmitApplyError -Kind step -Message ('application pool {0} is not as set: {1}' -f $Step.Name, ($differences -join '; '))) }
            return $after
        }
        'iisElement' {
            if ($Step.Op -ceq 'add') {
                Add-ExmitIisElement -Location $Step.Location -Section $Step.Section -Element $Step.Element -Index $Step.Position
            } else {
                $null = Remove-ExmitIisElement -Location $Step.Location -Section $Step.Section -Key $Step.Key
            }
            $present = ($null -ne (Get-ExmitIisElement -Location $Step.Location -Section $Step.Section -Key $Step.Key))
            if ($present -ne ($Step.Op -ceq 'add')) { throw (New-ExmitApplyError -Kind step -Message ('{0}: not done after the commit' -f $description)) }
            return [ordered]@{ sha256 = (Get-ExmitApplicationHostHash); present = $present }
        }
        'globalModule' {
            if ($Step.Op -ceq 'add') {
                Add-ExmitGlobalModule -Name $Step.Name -Image $Step.Image
            } else {
                $null = Remove-ExmitGlobalModule -Name $Step.Name
            }
            $present = ($null -ne (Get-ExmitGlobalModule -Name $Step.Name))
            if ($present -ne ($Step.Op -ceq 'add')) { throw (New-ExmitApplyError -Kind step -Message ('{0}: not done after the commit' -f $description)) }
            return [ordered]@{ sha256 = (Get-ExmitApplicationHostHash); present = $present }
        }
    }
    throw (New-ExmitApplyError -Kind internal -Message ('no change for step kind {0}' -f $Step.Kind))
}

function Get-ExmitRestoreState {
    <# .SYNOPSIS The part of a service's or app pool's prior state that undo sets back (a running state only when it was Running/Stopped, Started/Stopped). #>
    param([hashtable]$Step, $Prior)
    if ($Step.Kind -eq 'service') {
        $restore = [ordered]@{ startType = $Prior.startType; delayedStart = [bool]$Prior.delayedStart }
        if (@('Running', 'Stopped') -ccontains $Prior.status) { $restore.status = $Prior.status }
        return $restore
    }
    $restore = [ordered]@{ autoStart = [bool]$Prior.autoStart }
    if (@('Started', 'Stopped') -ccontains $Prior.state) { $restore.state = $Prior.state }
    return $restore
}

function Undo-ExmitStepChange {
    <#
    .SYNOPSIS Undoes one step of this run from its journaled prior state. A file is restored only when it
    still holds what this run wrote; a service or app pool only when it is as this run set it (or the step
    did not finish); anything else throws, naming what differs.
    #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([hashtable]$Target, [hashtable]$Record)
    $step = $Record.Step
    $prior = $Record.Prior
    $description = Get-ExmitStepDescription $step
    if (-not $PSCmdlet.ShouldProcess($description, 'undo')) { return }
    switch ($step.Kind) {
        'file' {
            $current = Get-ExmitFileSha256 $step.FullPath
            if ($current -ceq $prior.sha256) { return }
            if ($current -cne $step.AfterSha) {
                throw (New-ExmitApplyError -Kind step -File $step.Path -Message ('{0} was changed by someone else after this run wrote it (its sha256 is {1}): left as it is' -f $step.Path, $current))
            }
            if ($null -eq $prior.sha256) {
                [System.IO.File]::Delete($step.FullPath)
            } else {
                $bytes = Read-ExmitSavedCopy -Target $Target -Sha256 $prior.sha256
                if ($null -eq $bytes) { throw (New-ExmitApplyError -Kind step -File $step.Path -Message ('{0}: the saved copy files/{1} is missing' -f $step.Path, $prior.sha256)) }
                Write-ExmitFileAtomic -Path $step.FullPath -Bytes $bytes
            }
            $restored = Get-ExmitFileSha256 $step.FullPath
            if ($restored -cne $prior.sha256) {
                throw (New-ExmitApplyError -Kind step -File $step.Path -Message ('{0}: after restoring, its sha256 is {1}, not {2}' -f $step.Path, $restored, $prior.sha256))
            }
        }
        { $_ -eq 'service' -or $_ -eq 'appPool' } {
            $restore = Get-ExmitRestoreState -Step $step -Prior $prior
            if ($step.Kind -eq 'service') { $current = Get-ExmitServiceSnapshot -Name $step.Name } else { $current = Get-ExmitAppPoolSnapshot -Name $step.Name }
            if ($null -eq $current) { throw (New-ExmitApplyError -Kind step -Message ('{0}: it no longer exists' -f $description)) }
            if ((Compare-ExmitState -Current $current -Wanted $restore).Count -eq 0) { return }
            $changedByOthers = Compare-ExmitState -Current $current -Wanted $step.To
            if ($Record.Done -and $changedByOthers.Count -gt 0) {
                throw (New-ExmitApplyError -Kind step -Message ('{0}: changed by someone else after this run set it ({1}): left as it is' -f $description, ($changedByOthers -join '; ')))
            }
            if ($step.Kind -eq 'service') {
                Set-ExmitServiceState -Name $step.Name -To $restore
                $after = Get-ExmitServiceSnapshot -Name $step.Name
            } else {
                Set-ExmitAppPoolState -Name $step.Name -To $restore
                $after = Get-ExmitAppPoolSnapshot -Name $step.Name
            }
            $differences = Compare-ExmitState -Current $after -Wanted $restore
            if ($differences.Count -gt 0) { throw (New-ExmitApplyError -Kind step -Message ('{0}: not restored: {1}' -f $description, ($differences -join '; '))) }
        }
        'iisElement' {
            $present = ($null -ne (Get-ExmitIisElement -Location $step.Location -Section $step.Section -Key $step.Key))
            if ($present -eq [bool]$prior.present) { return }
            if ($prior.present) {
                Add-ExmitIisElement -Location $step.Location -Section $step.Section -Element $prior.element -Index ([int]$prior.index)
            } else {
                $null = Remove-ExmitIisElement -Location $step.Location -Section $step.Section -Key $step.Key
            }
            $present = ($null -ne (Get-ExmitIisElement -Location $step.Location -Section $step.Section -Key $step.Key))
            if ($present -ne [bool]$prior.present) { throw (New-ExmitApplyError -Kind step -Message ('{0}: not undone after the commit' -f $description)) }
        }
        'globalModule' {
            $present = ($null -ne (Get-ExmitGlobalModule -Name $step.Name))
            if ($present -eq [bool]$prior.present) { return }
            if ($prior.present) {
                $index = -1
                if ($null -ne $prior.index) { $index = [int]$prior.index }
                Add-ExmitGlobalModule -Name $step.Name -Image ([string]$prior.image) -Index $index
            } else {
                $null = Remove-ExmitGlobalModule -Name $step.Name
            }
            $present = ($null -ne (Get-ExmitGlobalModule -Name $step.Name))
            if ($present -ne [bool]$prior.present) { throw (New-ExmitApplyError -Kind step -Message ('{0}: not undone after the commit' -f $description)) }
        }
    }
}

#endregion

#region the operations

function Get-ExmitRequestText {
    <# .SYNOPSIS A required string field of a request (input error naming the op and field otherwise). #>
    param($Request, [string]$Op, [string]$Name)
    $value = Get-ExmitField $Request $Name
    if (-not ($value -is [string]) -or $value.Length -eq 0) {
        throw (New-ExmitApplyError -Kind input -Message ('{0} needs "{1}": a non-empty string' -f $Op, $Name))
    }
    return $value
}

function Invoke-ExmitExecute {
    <#
    .SYNOPSIS execute: runs the steps in order (re-check, save the prior state, journal intent, change,
    journal done), writes the ledger and `end`; on a failure undoes this run's steps in reverse and throws
    a conflict/step/fault error with details {failedStep, undone, undoFailures}.
    #>
    param([Parameter(Mandatory = $true)]$Request)
    $target = Get-ExmitTarget $Request
    $runId = Get-ExmitRequestText $Request 'execute' 'runId'
    if (-not (Test-ExmitRunId $runId)) {
        throw (New-ExmitApplyError -Kind input -Message ('execute: "runId" must match ^[0-9A-Za-z._-]+$ (at most 100 characters): {0}' -f $runId))
    }
    $mode = Get-ExmitField $Request 'mode'
    if (@('apply', 'rollback', 'repair') -cnotcontains $mode) { throw (New-ExmitApplyError -Kind input -Message 'execute: "mode" must be apply, rollback or repair') }
    $rawSteps = Get-ExmitField $Request 'steps'
    if (-not ($rawSteps -is [System.Array])) { throw (New-ExmitApplyError -Kind input -Message 'execute needs "steps": an array') }
    $ledger = Get-ExmitField $Request 'ledger'
    $ledgerBytes = $null
    if ($null -ne $ledger) {
        $ledgerData = Get-ExmitField $ledger 'data'
        if (-not ($ledgerData -is [string])) { throw (New-ExmitApplyError -Kind input -Message 'execute: "ledger" must be null or {data: base64}') }
        try {
            $ledgerBytes = [System.Convert]::FromBase64String($ledgerData)
        } catch {
            throw (New-ExmitApplyError -Kind input -Message 'execute: ledger.data is not base64')
        }
    }
    $fault = Get-ExmitFaultSpec (Get-ExmitField $Request 'fault')

    $imageRoot = $null
    if ($target.kind -eq 'image') { $imageRoot = Resolve-ExmitImageRoot $target.path }
    $steps = New-Object System.Collections.Generic.List[hashtable]
    for ($i = 0; $i -lt $rawSteps.Count; $i++) { $steps.Add((ConvertTo-ExmitStep -Target $target -Step $rawSteps[$i] -Index $i -ImageRoot $imageRoot)) }

    $lockPath = Get-ExmitLockPath -Target $target
    if ($null -eq $lockPath -or -not (Test-ExmitLockHeld -Path $lockPath -RunId $runId)) {
        throw (New-ExmitApplyError -Kind lock -File $lockPath -Message ('execute: run {0} does not hold the lock of this target (send lock first)' -f $runId))
    }
    $state = Get-ExmitStateDirectory -Target $target -Create
    $filesDirectory = Get-ExmitStateSubdirectory -StateDirectory $state -Name 'files' -Create
    $journal = Open-ExmitJournal -StateDirectory $state -RunId $runId
    try {
        Write-ExmitJournalLine $journal ([ordered]@{
                t             = 'begin'
                runId         = $runId
                mode          = $mode
                catalogSerial = (Get-ExmitField $Request 'catalogSerial')
                at            = (Get-ExmitUtcStamp)
                plan          = (Get-ExmitField $Request 'plan')
                steps         = [object[]]@(foreach ($step in $steps) { ConvertTo-ExmitJournalStep $step })
            })
        $records = New-Object System.Collections.Generic.List[hashtable]
        $failure = $null
        $failedIndex = 0
        try {
            foreach ($step in $steps) {
                $index = $step.Index
                $failedIndex = $index
                Write-ExmitEvent -Message ('step {0}/{1}: {2}' -f ($index + 1), $steps.Count, (Get-ExmitStepDescription $step))
                Invoke-ExmitFault -Fault $fault -Index $index -When 'before'
                $checked = Get-ExmitStepPrior -Step $step
                if ($null -ne $checked.Bytes) { $null = Save-ExmitCopy -FilesDirectory $filesDirectory -Bytes $checked.Bytes }
                Write-ExmitJournalLine $journal ([ordered]@{ t = 'intent'; step = $index; prior = $checked.Prior })
                $record = @{ Step = $step; Prior = $checked.Prior; After = $null; Done = $false }
                $records.Add($record)
                $record.After = Invoke-ExmitStepChange -Step $step
                Invoke-ExmitFault -Fault $fault -Index $index -When 'after'
                Write-ExmitJournalLine $journal ([ordered]@{ t = 'done'; step = $index; after = $record.After })
                $record.Done = $true
            }
            $failedIndex = $steps.Count
            if ($null -ne $ledgerBytes) { Write-ExmitFileAtomic -Path ([System.IO.Path]::Combine($state, 'ledger.json')) -Bytes $ledgerBytes }
        } catch {
            $failure = $_
        }
        if ($null -eq $failure) {
            Write-ExmitJournalLine $journal ([ordered]@{ t = 'end'; outcome = 'done'; at = (Get-ExmitUtcStamp) })
            $results = @(foreach ($record in $records) { [ordered]@{ index = $record.Step.Index; prior = $record.Prior; after = $record.After } })
            return [ordered]@{ steps = [object[]]$results; journal = $journal.Name }
        }
        throw (Undo-ExmitRun -Target $target -Journal $journal -Records $records -Failure $failure -FailedIndex $failedIndex -Steps $steps)
    } finally {
        Close-ExmitJournal $journal
    }
}

function Undo-ExmitRun {
    <# .SYNOPSIS Undoes a failed run's steps in reverse, journals `undone` and `end`, and returns the error to throw (with details). #>
    param([hashtable]$Target, [hashtable]$Journal, $Records, $Failure, [int]$FailedIndex, $Steps)
    $undoFailures = New-Object System.Collections.Generic.List[object]
    for ($i = $Records.Count - 1; $i -ge 0; $i--) {
        $record = $Records[$i]
        $index = $record.Step.Index
        try {
            Undo-ExmitStepChange -Target $Target -Record $record
        } catch {
            $undoFailures.Add([ordered]@{ index = $index; message = (Get-ExmitErrorMessage $_) })
            continue
        }
        try {
            Write-ExmitJournalLine $Journal ([ordered]@{ t = 'undone'; step = $index })
        } catch {
            $undoFailures.Add([ordered]@{ index = $index; message = ('undone, but the journal line could not be written: ' + (Get-ExmitErrorMessage $_)) })
        }
    }
    $outcome = 'undone'
    if ($undoFailures.Count -gt 0) { $outcome = 'undo-failed' }
    try {
        Write-ExmitJournalLine $Journal ([ordered]@{ t = 'end'; outcome = $outcome; at = (Get-ExmitUtcStamp) })
    } catch {
        $outcome = 'undo-failed'
        $undoFailures.Add([ordered]@{ index = -1; message = ('the end of the journal could not be written: ' + (Get-ExmitErrorMessage $_)) })
    }

    $kind = Get-ExmitErrorKind $Failure
    if ($kind -ne 'conflict' -and $kind -ne 'fault') { $kind = 'step' }
    $reason = Get-ExmitErrorMessage $Failure
    if ($FailedIndex -lt $Steps.Count) {
        $what = 'step {0}/{1} ({2})' -f ($FailedIndex + 1), $Steps.Count, (Get-ExmitStepDescription $Steps[$FailedIndex])
    } else {
        $what = 'writing the ledger'
    }
    $details = [ordered]@{ failedStep = $FailedIndex; undone = ($outcome -eq 'undone'); undoFailures = [object[]]$undoFailures.ToArray() }
    if ($outcome -eq 'undone') {
        $file = $null
        if ($FailedIndex -lt $Steps.Count -and $Steps[$FailedIndex].Kind -eq 'file') { $file = $Steps[$FailedIndex].Path }
        return (New-ExmitApplyError -Kind $kind -File $file -Details $details -Message ('{0} failed: {1}; every change of this run was undone' -f $what, $reason))
    }
    $failedSteps = (@($undoFailures | ForEach-Object { [string]$_.index }) -join ', ')
    return (New-ExmitApplyError -Kind $kind -File $Journal.Path -Details $details -Message ('{0} failed: {1}; undoing failed too for step(s) {2}: the journal {3} records what was changed' -f $what, $reason, $failedSteps, $Journal.Path))
}

function Get-ExmitApplyOperations {
    <#
    .SYNOPSIS The apply operations for the dispatcher: op name -> @{ Fields = field specs [{name, type,
    required, nullable}]; Run = scriptblock taking the request }. Types: object, string, array, any.
    #>
    $target = [ordered]@{ name = 'target'; type = 'object'; required = $true; nullable = $false }
    $runId = [ordered]@{ name = 'runId'; type = 'string'; required = $true; nullable = $false }
    $operations = [ordered]@{}
    $operations['lock'] = @{
        Fields = [object[]]@($target, $runId)
        Run    = { param($Request) Lock-ExmitTarget -Target (Get-ExmitTarget $Request) -RunId (Get-ExmitRequestText $Request 'lock' 'runId') }
    }
    $operations['unlock'] = @{
        Fields = [object[]]@($target, $runId)
        Run    = { param($Request) Unlock-ExmitTarget -Target (Get-ExmitTarget $Request) -RunId (Get-ExmitRequestText $Request 'unlock' 'runId') }
    }
    $operations['readState'] = @{
        Fields = [object[]]@($target)
        Run    = { param($Request) Read-ExmitState -Target (Get-ExmitTarget $Request) }
    }
    $operations['readBlob'] = @{
        Fields = [object[]]@($target, [ordered]@{ name = 'sha256'; type = 'string'; required = $true; nullable = $false })
        Run    = { param($Request) Read-ExmitBlob -Target (Get-ExmitTarget $Request) -Sha256 (Get-ExmitRequestText $Request 'readBlob' 'sha256') }
    }
    $operations['execute'] = @{
        Fields = [object[]]@(
            $target,
            $runId,
            [ordered]@{ name = 'mode'; type = 'string'; required = $true; nullable = $false },
            [ordered]@{ name = 'catalogSerial'; type = 'any'; required = $false; nullable = $true },
            [ordered]@{ name = 'plan'; type = 'any'; required = $true; nullable = $true },
            [ordered]@{ name = 'steps'; type = 'array'; required = $true; nullable = $false },
            [ordered]@{ name = 'ledger'; type = 'object'; required = $false; nullable = $true },
            [ordered]@{ name = 'fault'; type = 'object'; required = $false; nullable = $true }
        )
        Run    = { param($Request) Invoke-ExmitExecute -Request $Request }
    }
    return $operations
}

#endregion
