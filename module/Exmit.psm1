# The Exmit PowerShell module: exmit's commands as cmdlets that return objects. Each function runs
# exmit (exmit.exe beside the module or one folder up, or -ExmitPath) with --json and turns its exit
# codes into terminating errors carrying exmit's message and hint. Windows PowerShell 5.1 and
# PowerShell 7; ASCII only.

Set-StrictMode -Version Latest

function Resolve-ExmitPath {
    <# The exmit executable to run: -ExmitPath when given, else exmit.exe beside the module or in its parent folder (the release zip's layout). #>
    param([string]$ExmitPath)
    if ($ExmitPath) {
        if (-not (Test-Path -LiteralPath $ExmitPath -PathType Leaf)) {
            throw ('exmit not found at {0}: pass -ExmitPath with the path of exmit.exe' -f $ExmitPath)
        }
        return (Resolve-Path -LiteralPath $ExmitPath).ProviderPath
    }
    foreach ($folder in @($PSScriptRoot, (Split-Path -Parent $PSScriptRoot))) {
        $candidate = Join-Path $folder 'exmit.exe'
        if (Test-Path -LiteralPath $candidate -PathType Leaf) { return $candidate }
    }
    throw ('exmit.exe not found beside the module ({0}) or in its parent folder: pass -ExmitPath' -f $PSScriptRoot)
}

function Get-ExmitProperty {
    <# A property of a JSON object, or $Default when it has none (strict mode forbids reading a missing one). #>
    param($Object, [string]$Name, $Default = $null)
    if ($null -eq $Object) { return $Default }
    $property = $Object.PSObject.Properties[$Name]
    if ($null -eq $property) { return $Default }
    return $property.Value
}

function Invoke-ExmitJson {
    <#
    Runs exmit with the arguments and --json, and returns the parsed document. Exit codes listed in
    -Success (0 always) return the document; any other becomes a terminating error of the calling
    cmdlet with exmit's message and hint (TargetObject: exit code, message, hint and the document).
    #>
    param(
        [Parameter(Mandatory)][System.Management.Automation.PSCmdlet]$Cmdlet,
        [string]$ExmitPath,
        [Parameter(Mandatory)][string[]]$ArgumentList,
        [int[]]$Success = @(0)
    )
    try {
        $exe = Resolve-ExmitPath -ExmitPath $ExmitPath
    } catch {
        $record = New-Object System.Management.Automation.ErrorRecord (New-Object System.IO.FileNotFoundException ($_.Exception.Message)), 'Exmit.NotFound', ([System.Management.Automation.ErrorCategory]::ObjectNotFound), $ExmitPath
        $Cmdlet.ThrowTerminatingError($record)
    }
    $arguments = @($ArgumentList) + @('--json')
    Write-Verbose ('exmit {0}' -f ($arguments -join ' '))
    # exmit writes UTF-8; Windows PowerShell would read it in the console's code page.
    $previousEncoding = $null
    try {
        $previousEncoding = [Console]::OutputEncoding
        [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false
    } catch {
        Write-Verbose ('console encoding left as it is: {0}' -f $_.Exception.Message)
    }
    $PSNativeCommandUseErrorActionPreference = $false
    try {
        $lines = & $exe @arguments
        $code = $LASTEXITCODE
    } finally {
        if ($null -ne $previousEncoding) {
            try { [Console]::OutputEncoding = $previousEncoding } catch { Write-Verbose 'console encoding not restored' }
        }
    }
    $text = (@($lines) | ForEach-Object { [string]$_ }) -join "`n"
    $document = $null
    if ($text.Trim() -ne '') {
        try {
            $document = $text | ConvertFrom-Json
        } catch {
            $document = $null
        }
    }
    if ($null -eq $document) {
        $exception = New-Object System.InvalidOperationException ('exmit exited {0} without a JSON document on stdout' -f $code)
        $Cmdlet.ThrowTerminatingError((New-Object System.Management.Automation.ErrorRecord $exception, 'Exmit.NoJson', ([System.Management.Automation.ErrorCategory]::InvalidResult), $text))
    }
    if ($code -eq 0 -or $Success -contains $code) { return $document }

    $failure = Get-ExmitProperty $document 'error'
    $message = [string](Get-ExmitProperty $failure 'message' ('exmit exited {0}' -f $code))
    $hint = [string](Get-ExmitProperty $failure 'hint' '')
    $category = switch ($code) {
        2 { [System.Management.Automation.ErrorCategory]::InvalidArgument }
        4 { [System.Management.Automation.ErrorCategory]::InvalidResult }
        5 { [System.Management.Automation.ErrorCategory]::InvalidResult }
        default { [System.Management.Automation.ErrorCategory]::InvalidOperation }
    }
    $details = [pscustomobject]@{ PSTypeName = 'Exmit.Error'; ExitCode = $code; Message = $message; Hint = $hint; Document = $document }
    $exception = New-Object System.Exception ('exmit: {0}' -f $message)
    $record = New-Object System.Management.Automation.ErrorRecord $exception, ('Exmit.Exit{0}' -f $code), $category, $details
    $shown = 'exmit: {0}' -f $message
    if ($hint) { $shown = '{0}{1}  {2}' -f $shown, [Environment]::NewLine, $hint }
    $record.ErrorDetails = New-Object System.Management.Automation.ErrorDetails $shown
    if ($hint) { $record.ErrorDetails.RecommendedAction = $hint }
    $Cmdlet.ThrowTerminatingError($record)
}

function Get-ExmitCommonArgument {
    <# --target, --catalog and --state-dir as exmit takes them. #>
    param([string]$Target, [string]$Catalog, [string]$StateDir)
    $arguments = @('--target', $Target)
    if ($Catalog) { $arguments += @('--catalog', $Catalog) }
    if ($StateDir) { $arguments += @('--state-dir', $StateDir) }
    return , $arguments
}

function Write-ExmitWarning {
    <# The document's warnings, as PowerShell warnings. #>
    param($Document)
    foreach ($warning in @(Get-ExmitProperty $Document 'warnings' @())) {
        if ($null -ne $warning -and [string]$warning -ne '') { Write-Warning ([string]$warning) }
    }
}

function ConvertTo-ExmitResult {
    <# One object per result of apply or rollback. #>
    param($Document, [string]$Target)
    $dryRun = [bool](Get-ExmitProperty $Document 'dryRun' $false)
    foreach ($result in @(Get-ExmitProperty $Document 'results' @())) {
        if ($null -eq $result) { continue }
        [pscustomobject]@{
            PSTypeName = 'Exmit.Result'
            Id         = Get-ExmitProperty $result 'id'
            Outcome    = Get-ExmitProperty $result 'outcome'
            Reason     = Get-ExmitProperty $result 'reason'
            Changes    = @(Get-ExmitProperty $result 'changes' @())
            DryRun     = $dryRun
            Target     = $Target
        }
    }
}

function Get-ExmitPlanText {
    <# What a dry run says each mitigation would do, for the confirmation prompt. #>
    param($Document)
    $parts = @()
    foreach ($result in @(Get-ExmitProperty $Document 'results' @())) {
        if ($null -eq $result) { continue }
        $changes = @(Get-ExmitProperty $result 'changes' @()) | Where-Object { $null -ne $_ }
        $what = @($changes | ForEach-Object { '{0} {1}' -f (Get-ExmitProperty $_ 'kind'), (Get-ExmitProperty $_ 'target') }) -join '; '
        if ($what) {
            $parts += '{0} ({1}): {2}' -f (Get-ExmitProperty $result 'id'), (Get-ExmitProperty $result 'outcome'), $what
        } else {
            $parts += '{0} ({1}{2})' -f (Get-ExmitProperty $result 'id'), (Get-ExmitProperty $result 'outcome'), $(if (Get-ExmitProperty $result 'reason') { ': ' + (Get-ExmitProperty $result 'reason') } else { '' })
        }
    }
    return ($parts -join [Environment]::NewLine)
}

function Get-ExmitServer {
    <#
    .SYNOPSIS
        What Exchange a server runs: product, exact build and its name, CU, update, roles, EEMS.
    .DESCRIPTION
        Runs "exmit detect --json" and returns its object (product, build, name, cu, update,
        releaseDate, roles, installPath, buildSource, suLevelKnown, latestForCu, eems, ...).
        On a live server, run it from an elevated 64-bit PowerShell.
    .PARAMETER Target
        local (this server, the default) or image:DIR (a server image made by exmit collect).
    .PARAMETER ExmitPath
        The exmit executable; by default exmit.exe beside the module or in its parent folder.
    .EXAMPLE
        Get-ExmitServer
    .EXAMPLE
        Get-ExmitServer -Target image:D:\images\mbx01 | Select-Object name, build, roles
    #>
    [CmdletBinding()]
    param(
        [string]$Target = 'local',
        [string]$ExmitPath
    )
    # detect reads no state folder and no catalog: it takes only --target.
    $arguments = @('detect', '--target', $Target)
    $document = Invoke-ExmitJson -Cmdlet $PSCmdlet -ExmitPath $ExmitPath -ArgumentList $arguments
    $document.PSObject.TypeNames.Insert(0, 'Exmit.Server')
    return $document
}

function Get-ExmitAudit {
    <#
    .SYNOPSIS
        Which mitigations a server needs, has, or no longer needs: one object per mitigation.
    .DESCRIPTION
        Runs "exmit audit --json". Each object has Id, Title, Status (needed, partial, outdated,
        mitigated, fixed, patch-only, not-applicable, blocked), Reason, Cves, StillApplied, Breaks,
        SideEffects, FixedBy, Server (the release's name), Build and Target. Exposed is not an
        error: filter on Status. -Report returns exmit's whole audit document instead (server,
        catalog, mitigations, exposed, advice, warnings). The catalog's warnings become warnings.
    .PARAMETER Target
        local (this server, the default) or image:DIR (a server image).
    .PARAMETER Catalog
        A signed catalog file or URL to audit against instead of the newest verified one.
    .PARAMETER StateDir
        exmit's state folder (configuration, trusted keys, catalog cache).
    .PARAMETER Report
        Return the whole audit document rather than one object per mitigation.
    .PARAMETER ExmitPath
        The exmit executable; by default exmit.exe beside the module or in its parent folder.
    .EXAMPLE
        Get-ExmitAudit | Where-Object Status -eq needed
    .EXAMPLE
        Get-ExmitAudit -Target image:D:\images\mbx01 | Format-Table Id, Status, Reason
    #>
    [CmdletBinding()]
    param(
        [string]$Target = 'local',
        [string]$Catalog,
        [string]$StateDir,
        [switch]$Report,
        [string]$ExmitPath
    )
    $arguments = @('audit') + (Get-ExmitCommonArgument -Target $Target -Catalog $Catalog -StateDir $StateDir)
    $document = Invoke-ExmitJson -Cmdlet $PSCmdlet -ExmitPath $ExmitPath -ArgumentList $arguments -Success @(0, 3)
    Write-ExmitWarning $document
    if ($Report) {
        $document.PSObject.TypeNames.Insert(0, 'Exmit.AuditReport')
        return $document
    }
    $server = Get-ExmitProperty $document 'server'
    foreach ($mitigation in @(Get-ExmitProperty $document 'mitigations' @())) {
        if ($null -eq $mitigation) { continue }
        [pscustomobject]@{
            PSTypeName   = 'Exmit.Mitigation'
            Id           = Get-ExmitProperty $mitigation 'id'
            Status       = Get-ExmitProperty $mitigation 'status'
            Title        = Get-ExmitProperty $mitigation 'title'
            Reason       = Get-ExmitProperty $mitigation 'reason'
            Cves         = @(Get-ExmitProperty $mitigation 'cves' @())
            StillApplied = [bool](Get-ExmitProperty $mitigation 'stillApplied' $false)
            Breaks       = Get-ExmitProperty $mitigation 'breaks'
            SideEffects  = @(Get-ExmitProperty $mitigation 'sideEffects' @())
            FixedBy      = Get-ExmitProperty $mitigation 'fixedBy'
            Server       = Get-ExmitProperty $server 'name'
            Build        = Get-ExmitProperty $server 'build'
            Target       = $Target
        }
    }
}

function Invoke-ExmitMitigation {
    <#
    .SYNOPSIS
        Applies mitigations: by id or CVE (also from the pipeline), or every needed one.
    .DESCRIPTION
        First runs "exmit apply ... --dry-run --json" to learn the exact plan, then asks (ConfirmImpact
        High: PowerShell asks unless -Confirm:$false or -Force) with what each mitigation would
        change, and only then runs "exmit apply ... --yes --json". -WhatIf shows the plan and changes
        nothing. Returns one object per mitigation (Id, Outcome, Reason, Changes). A run is all or
        nothing: exit 4 (undone) and 5 (undoing failed too) become terminating errors whose
        TargetObject.Document holds exmit's whole answer.
    .PARAMETER Id
        Mitigation ids or CVE numbers; bound from the Id property of piped objects (Get-ExmitAudit).
    .PARAMETER Needed
        Every mitigation the server needs; those that stop a feature only with -AllowBreaking.
    .PARAMETER AllowBreaking
        With -Needed: apply also the mitigations that stop a feature (ECP, OAB app pool, UM).
    .PARAMETER Force
        Do not ask (the same as -Confirm:$false).
    .PARAMETER Target
        local (this server, the default) or image:DIR (a server image).
    .PARAMETER Catalog
        A signed catalog file or URL instead of the newest verified one.
    .PARAMETER StateDir
        exmit's state folder.
    .PARAMETER ExmitPath
        The exmit executable; by default exmit.exe beside the module or in its parent folder.
    .EXAMPLE
        Invoke-ExmitMitigation proxynotshell-autodiscover -WhatIf
    .EXAMPLE
        Get-ExmitAudit | Where-Object Status -eq needed | Invoke-ExmitMitigation
    .EXAMPLE
        Invoke-ExmitMitigation -Needed -Force
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High', DefaultParameterSetName = 'Id')]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'Id', ValueFromPipeline, ValueFromPipelineByPropertyName)]
        [string[]]$Id,
        [Parameter(Mandatory, ParameterSetName = 'Needed')]
        [switch]$Needed,
        [switch]$AllowBreaking,
        [switch]$Force,
        [string]$Target = 'local',
        [string]$Catalog,
        [string]$StateDir,
        [string]$ExmitPath
    )
    begin { $ids = New-Object System.Collections.Generic.List[string] }
    process { if ($PSCmdlet.ParameterSetName -eq 'Id') { foreach ($one in $Id) { $ids.Add($one) } } }
    end {
        $selection = @($ids)
        if ($Needed) { $selection = @('--needed') }
        $arguments = @('apply') + $selection + (Get-ExmitCommonArgument -Target $Target -Catalog $Catalog -StateDir $StateDir)
        if ($AllowBreaking) { $arguments += '--allow-breaking' }
        Invoke-ExmitChange -Cmdlet $PSCmdlet -ExmitPath $ExmitPath -ArgumentList $arguments -Verb 'Apply' -What ($selection -join ', ') -Target $Target -Force:$Force
    }
}

function Undo-ExmitMitigation {
    <#
    .SYNOPSIS
        Rolls back what exmit applied: by id or CVE (also from the pipeline), or everything.
    .DESCRIPTION
        First runs "exmit rollback ... --dry-run --json" to learn the exact plan, then asks
        (ConfirmImpact High) and only then runs "exmit rollback ... --yes --json". -WhatIf shows the
        plan and changes nothing. Returns one object per mitigation (Id, Outcome, Reason, Changes);
        exit 4 and 5 become terminating errors with exmit's message and hint.
    .PARAMETER Id
        Mitigation ids or CVE numbers; bound from the Id property of piped objects (Get-ExmitStatus).
    .PARAMETER All
        Everything exmit applied on the target.
    .PARAMETER Force
        Do not ask (the same as -Confirm:$false).
    .PARAMETER Target
        local (this server, the default) or image:DIR (a server image).
    .PARAMETER StateDir
        exmit's state folder.
    .PARAMETER ExmitPath
        The exmit executable; by default exmit.exe beside the module or in its parent folder.
    .EXAMPLE
        Undo-ExmitMitigation proxynotshell-autodiscover
    .EXAMPLE
        Undo-ExmitMitigation -All -WhatIf
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High', DefaultParameterSetName = 'Id')]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'Id', ValueFromPipeline, ValueFromPipelineByPropertyName)]
        [string[]]$Id,
        [Parameter(Mandatory, ParameterSetName = 'All')]
        [switch]$All,
        [switch]$Force,
        [string]$Target = 'local',
        [string]$StateDir,
        [string]$ExmitPath
    )
    begin { $ids = New-Object System.Collections.Generic.List[string] }
    process { if ($PSCmdlet.ParameterSetName -eq 'Id') { foreach ($one in $Id) { $ids.Add($one) } } }
    end {
        $selection = @($ids)
        if ($All) { $selection = @('--all') }
        $arguments = @('rollback') + $selection + (Get-ExmitCommonArgument -Target $Target -StateDir $StateDir)
        Invoke-ExmitChange -Cmdlet $PSCmdlet -ExmitPath $ExmitPath -ArgumentList $arguments -Verb 'Roll back' -What ($selection -join ', ') -Target $Target -Force:$Force
    }
}

function Invoke-ExmitChange {
    <# apply or rollback: the dry run, ShouldProcess with its plan, then the run with --yes. #>
    param(
        [System.Management.Automation.PSCmdlet]$Cmdlet,
        [string]$ExmitPath,
        [string[]]$ArgumentList,
        [string]$Verb,
        [string]$What,
        [string]$Target,
        [switch]$Force
    )
    $plan = Invoke-ExmitJson -Cmdlet $Cmdlet -ExmitPath $ExmitPath -ArgumentList (@($ArgumentList) + @('--dry-run'))
    Write-ExmitWarning $plan
    $planText = Get-ExmitPlanText $plan
    $action = '{0} {1}' -f $Verb, $What
    if ($planText) { $action = '{0}{1}{2}' -f $action, [Environment]::NewLine, $planText }
    $confirmed = $Force -and -not $WhatIfPreference
    if (-not $confirmed) { $confirmed = $Cmdlet.ShouldProcess($Target, $action) }
    if (-not $confirmed) { return }
    $done = Invoke-ExmitJson -Cmdlet $Cmdlet -ExmitPath $ExmitPath -ArgumentList (@($ArgumentList) + @('--yes'))
    Write-ExmitWarning $done
    ConvertTo-ExmitResult -Document $done -Target $Target
}

function Get-ExmitStatus {
    <#
    .SYNOPSIS
        What exmit applied on a server, and whether each is still in place: one object per mitigation.
    .DESCRIPTION
        Runs "exmit status --json". Each object has Id, AppliedAt, CatalogSerial, InPlace, Drift and
        Target. A run that was interrupted is reported as a warning (run Undo-ExmitMitigation to
        repair it); drift is not an error. -Report returns exmit's whole status document (server,
        applied, interrupted, exposed, mitigations, catalog).
    .PARAMETER Target
        local (this server, the default) or image:DIR (a server image).
    .PARAMETER Catalog
        A signed catalog file or URL instead of the newest verified one.
    .PARAMETER StateDir
        exmit's state folder.
    .PARAMETER Report
        Return the whole status document.
    .PARAMETER ExmitPath
        The exmit executable; by default exmit.exe beside the module or in its parent folder.
    .EXAMPLE
        Get-ExmitStatus | Where-Object { -not $_.InPlace }
    #>
    [CmdletBinding()]
    param(
        [string]$Target = 'local',
        [string]$Catalog,
        [string]$StateDir,
        [switch]$Report,
        [string]$ExmitPath
    )
    $arguments = @('status') + (Get-ExmitCommonArgument -Target $Target -Catalog $Catalog -StateDir $StateDir)
    $document = Invoke-ExmitJson -Cmdlet $PSCmdlet -ExmitPath $ExmitPath -ArgumentList $arguments -Success @(0, 3)
    Write-ExmitWarning $document
    $interrupted = Get-ExmitProperty $document 'interrupted'
    if ($null -ne $interrupted -and $interrupted -ne $false -and @($interrupted).Count -gt 0) {
        Write-Warning ('an exmit run on {0} was interrupted: Undo-ExmitMitigation repairs it ({1})' -f $Target, ($interrupted | ConvertTo-Json -Depth 6 -Compress))
    }
    if ($Report) {
        $document.PSObject.TypeNames.Insert(0, 'Exmit.StatusReport')
        return $document
    }
    foreach ($entry in @(Get-ExmitProperty $document 'applied' @())) {
        if ($null -eq $entry) { continue }
        [pscustomobject]@{
            PSTypeName    = 'Exmit.Applied'
            Id            = Get-ExmitProperty $entry 'id'
            AppliedAt     = Get-ExmitProperty $entry 'appliedAt'
            CatalogSerial = Get-ExmitProperty $entry 'catalogSerial'
            InPlace       = Get-ExmitProperty $entry 'inPlace'
            Drift         = Get-ExmitProperty $entry 'drift'
            Target        = $Target
        }
    }
}

Export-ModuleMember -Function Get-ExmitServer, Get-ExmitAudit, Invoke-ExmitMitigation, Undo-ExmitMitigation, Get-ExmitStatus
