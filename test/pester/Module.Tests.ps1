# The Exmit module (module/Exmit.psd1) driving the Node CLI (bin/exmit.js) on server images. A fake
# exmit (a shell script) is used only to inject the failures of apply (exit 4) and to see which runs
# -WhatIf and -Confirm allow; everything else runs the real CLI and engine.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    # bin/exmit.js runs on the node that PATH finds first: the project's Node 24.
    $env:PATH = (Join-Path $RepoRoot 'node_modules/.bin') + [System.IO.Path]::PathSeparator + $env:PATH
    $script:ModuleFolder = Join-Path $RepoRoot 'module'
    $script:Cli = Join-Path $RepoRoot 'bin/exmit.js'
    $script:Example = 'image:' + (Join-Path $RepoRoot 'examples/e19-cu12-oct22su')
    $script:StateDir = Join-Path $TestDrive 'state'
    Import-Module (Join-Path $ModuleFolder 'Exmit.psd1') -Force

    function Get-TerminatingError {
        param([scriptblock]$Script)
        try {
            $null = & $Script
        } catch {
            return $_
        }
        throw 'no terminating error'
    }

    function New-FakeExmit {
        <# A stand-in for exmit that logs its arguments and answers a dry run, or fails the real run with ExitCode and Document. #>
        param([string]$Folder, [int]$ExitCode, [string]$Document)
        $null = New-Item -ItemType Directory -Force -Path $Folder
        $dryRun = '{"server":{"name":"Exchange 2019 CU12 Oct22SU"},"dryRun":true,"results":[{"id":"proxynotshell-autodiscover","outcome":"applied","reason":null,"changes":[{"kind":"rule","target":"Default Web Site: exmit PowerShell - inbound","before":null,"after":"AbortRequest"}]}],"plan":[],"diffs":[],"journal":null,"warnings":[],"catalog":{"source":"bundled"}}'
        $script = @(
            '#!/bin/sh',
            ('echo "$*" >> "{0}"' -f (Join-Path $Folder 'calls.log')),
            'case " $* " in',
            ("  *' --dry-run '*) printf '%s\n' '{0}'; exit 0;;" -f $dryRun),
            'esac',
            ("printf '%s\n' '{0}'" -f $Document),
            ('exit {0}' -f $ExitCode)
        ) -join "`n"
        $path = Join-Path $Folder 'exmit'
        [System.IO.File]::WriteAllText($path, $script + "`n")
        & chmod 755 $path
        return $path
    }
}

AfterAll {
    Remove-Module Exmit -ErrorAction SilentlyContinue
}

Describe 'the module' {
    It 'has a manifest of the package version that exports the five functions' {
        $manifest = Test-ModuleManifest -Path (Join-Path $ModuleFolder 'Exmit.psd1')
        $package = Get-Content -Raw -LiteralPath (Join-Path $RepoRoot 'package.json') | ConvertFrom-Json
        $manifest.Version.ToString() | Should -Be $package.version
        @($manifest.ExportedFunctions.Keys | Sort-Object) | Should -Be @('Get-ExmitAudit', 'Get-ExmitServer', 'Get-ExmitStatus', 'Invoke-ExmitMitigation', 'Undo-ExmitMitigation')
        @($manifest.CompatiblePSEditions | Sort-Object) | Should -Be @('Core', 'Desktop')
    }

    It 'keeps to Windows PowerShell 5.1 syntax' {
        & (Join-Path $RepoRoot 'scripts/check-ps51.ps1') -Path (Join-Path $ModuleFolder 'Exmit.psm1'), (Join-Path $ModuleFolder 'Exmit.psd1') | Out-Null
        $LASTEXITCODE | Should -Be 0
    }

    It 'has comment-based help with an example on every function' {
        foreach ($name in 'Get-ExmitServer', 'Get-ExmitAudit', 'Invoke-ExmitMitigation', 'Undo-ExmitMitigation', 'Get-ExmitStatus') {
            $help = Get-Help $name -Full
            $help.Synopsis | Should -Not -Match '^\s*Get-|^\s*Invoke-|^\s*Undo-' -Because "$name needs a synopsis"
            @($help.Examples.Example).Count | Should -BeGreaterThan 0 -Because "$name needs an example"
            foreach ($parameter in @($help.Parameters.Parameter)) {
                if (@('WhatIf', 'Confirm') -contains $parameter.Name) { continue }
                ($parameter.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "$name -$($parameter.Name) needs a description"
            }
        }
    }

    It 'makes apply and rollback ShouldProcess cmdlets with ConfirmImpact High' {
        foreach ($name in 'Invoke-ExmitMitigation', 'Undo-ExmitMitigation') {
            $command = Get-Command $name
            $command.Parameters.Keys | Should -Contain 'WhatIf'
            $command.Parameters.Keys | Should -Contain 'Confirm'
            $binding = $command.ScriptBlock.Attributes | Where-Object { $_ -is [System.Management.Automation.CmdletBindingAttribute] }
            $binding.ConfirmImpact | Should -Be 'High'
        }
    }
}

Describe 'Get-ExmitServer and Get-ExmitAudit on the bundled example' {
    It 'Get-ExmitServer returns what detect finds' {
        $server = Get-ExmitServer -Target $Example -ExmitPath $Cli
        $server.product | Should -Be 'Exchange Server 2019'
        $server.build | Should -Be '15.2.1118.15'
        $server.name | Should -Be 'Exchange 2019 CU12 Oct22SU'
        @($server.roles) | Should -Contain 'Mailbox'
        $server.PSObject.TypeNames[0] | Should -Be 'Exmit.Server'
    }

    It 'Get-ExmitAudit returns one object per mitigation that Where-Object can filter; exposed is not an error' {
        $audit = @(Get-ExmitAudit -Target $Example -StateDir $StateDir -ExmitPath $Cli)
        $catalog = & $Cli catalog list --json --state-dir $StateDir | Out-String | ConvertFrom-Json
        $audit.Count | Should -Be @($catalog.mitigations).Count
        @($audit.Id) | Should -Be @($catalog.mitigations.id)
        $needed = @($audit | Where-Object Status -eq needed)
        @($needed.Id | Sort-Object) | Should -Be @('owa-csp-xss', 'proxynotshell-autodiscover', 'tokencache-module')
        ($audit | Where-Object Id -eq owassrf).Status | Should -Be 'patch-only'
        ($audit | Where-Object Id -eq proxylogon-cookie).Status | Should -Be 'fixed'
        $first = $audit[0]
        $first.PSObject.TypeNames[0] | Should -Be 'Exmit.Mitigation'
        $first.Server | Should -Be 'Exchange 2019 CU12 Oct22SU'
        $first.Build | Should -Be '15.2.1118.15'
        $first.Reason | Should -Not -BeNullOrEmpty
        ,$first.Cves | Should -BeOfType [object[]]
    }

    It 'Get-ExmitAudit -Report returns the whole document' {
        $report = Get-ExmitAudit -Target $Example -StateDir $StateDir -ExmitPath $Cli -Report
        $report.exposed | Should -Be $true
        $report.catalog.source | Should -Be 'bundled'
        @($report.advice).Count | Should -BeGreaterThan 0
    }
}

Describe 'exit codes become terminating errors with the message and hint' {
    It 'exit 1: a missing image names it, with the hint' {
        $missing = Join-Path $TestDrive 'no-such-image'
        $record = Get-TerminatingError { Get-ExmitAudit -Target "image:$missing" -StateDir $StateDir -ExmitPath $Cli }
        $record.FullyQualifiedErrorId | Should -Be 'Exmit.Exit1,Get-ExmitAudit'
        $record.Exception.Message | Should -Be "exmit: server image not found: $missing"
        $record.ErrorDetails.RecommendedAction | Should -Match 'exmit collect --out DIR'
        $record.ErrorDetails.Message | Should -Match 'exmit collect --out DIR'
        $record.TargetObject.ExitCode | Should -Be 1
        $record.CategoryInfo.Category | Should -Be 'InvalidOperation'
    }

    It 'exit 2: a bad target is an invalid argument' {
        $record = Get-TerminatingError { Get-ExmitServer -Target 'bogus:x' -ExmitPath $Cli }
        $record.FullyQualifiedErrorId | Should -Be 'Exmit.Exit2,Get-ExmitServer'
        $record.Exception.Message | Should -Match 'unknown --target "bogus:x"'
        $record.CategoryInfo.Category | Should -Be 'InvalidArgument'
    }

    It 'stops even when the caller continues on errors' {
        $reached = $false
        try {
            $null = Get-ExmitServer -Target 'bogus:x' -ExmitPath $Cli -ErrorAction Continue
            $reached = $true
        } catch {
            $_.FullyQualifiedErrorId | Should -Be 'Exmit.Exit2,Get-ExmitServer'
        }
        $reached | Should -Be $false
    }

    It 'finds exmit.exe one folder above the module, as the release zip lays them out' {
        $release = Join-Path $TestDrive 'release'
        $null = New-Item -ItemType Directory -Force -Path (Join-Path $release 'Exmit')
        Copy-Item -Path (Join-Path $ModuleFolder '*') -Destination (Join-Path $release 'Exmit')
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $release 'exmit.exe') -Target $Cli
        try {
            $copy = Import-Module (Join-Path $release 'Exmit/Exmit.psd1') -Force -PassThru
            $copy.ModuleBase | Should -Be (Join-Path $release 'Exmit')
            (& $copy.ExportedCommands['Get-ExmitServer'] -Target $Example).build | Should -Be '15.2.1118.15'
        } finally {
            Get-Module Exmit | Remove-Module
            Import-Module (Join-Path $ModuleFolder 'Exmit.psd1') -Force
        }
    }

    It 'no exmit: says where it looked' {
        $record = Get-TerminatingError { Get-ExmitServer -ExmitPath (Join-Path $TestDrive 'nowhere/exmit.exe') }
        $record.FullyQualifiedErrorId | Should -Be 'Exmit.NotFound,Get-ExmitServer'
        $record.Exception.Message | Should -Match 'nowhere'
    }

    It 'exit 4 from apply: the error carries exmit''s whole answer' {
        $document = '{"server":{},"dryRun":false,"results":[{"id":"proxynotshell-autodiscover","outcome":"failed","reason":"applicationHost.config changed","changes":[]}],"plan":[],"diffs":[],"journal":null,"warnings":[],"catalog":{},"error":{"code":4,"message":"apply failed at step 2; every change of this run was undone","hint":"Run exmit status to check."}}'
        $fake = New-FakeExmit -Folder (Join-Path $TestDrive 'fake4') -ExitCode 4 -Document $document
        $record = Get-TerminatingError { Invoke-ExmitMitigation proxynotshell-autodiscover -Target image:x -ExmitPath $fake -Confirm:$false }
        $record.FullyQualifiedErrorId | Should -Be 'Exmit.Exit4,Invoke-ExmitMitigation'
        $record.Exception.Message | Should -Be 'exmit: apply failed at step 2; every change of this run was undone'
        $record.ErrorDetails.RecommendedAction | Should -Be 'Run exmit status to check.'
        $record.TargetObject.Document.results[0].outcome | Should -Be 'failed'
    }
}

Describe '-WhatIf and -Confirm' {
    It '-WhatIf runs only the dry run; -Confirm:$false runs it with --yes' {
        $folder = Join-Path $TestDrive 'fake0'
        $done = '{"server":{},"dryRun":false,"results":[{"id":"proxynotshell-autodiscover","outcome":"applied","reason":null,"changes":[{"kind":"rule","target":"t","before":null,"after":"a"}]}],"plan":[],"diffs":[],"journal":{},"warnings":["a warning"],"catalog":{}}'
        $fake = New-FakeExmit -Folder $folder -ExitCode 0 -Document $done
        $out = @(Invoke-ExmitMitigation proxynotshell-autodiscover -Target image:x -ExmitPath $fake -WhatIf)
        $out.Count | Should -Be 0
        @(Get-Content (Join-Path $folder 'calls.log')) | Should -Be @('apply proxynotshell-autodiscover --target image:x --dry-run --json')

        $results = @('proxynotshell-autodiscover' | Invoke-ExmitMitigation -Target image:x -ExmitPath $fake -Confirm:$false -WarningVariable warned -WarningAction SilentlyContinue)
        @(Get-Content (Join-Path $folder 'calls.log'))[-1] | Should -Be 'apply proxynotshell-autodiscover --target image:x --yes --json'
        $results.Count | Should -Be 1
        $results[0].Outcome | Should -Be 'applied'
        $results[0].Changes[0].kind | Should -Be 'rule'
        @($warned | ForEach-Object { $_.Message }) | Should -Be @('a warning')
    }

    It 'ids come from the pipeline by property name; -Needed and -All map to the flags' {
        $folder = Join-Path $TestDrive 'fake-pipe'
        $fake = New-FakeExmit -Folder $folder -ExitCode 0 -Document '{"results":[]}'
        [pscustomobject]@{ Id = 'owa-csp-xss' }, [pscustomobject]@{ Id = 'tokencache-module' } | Invoke-ExmitMitigation -Target image:x -ExmitPath $fake -WhatIf
        Invoke-ExmitMitigation -Needed -AllowBreaking -Target image:x -ExmitPath $fake -WhatIf
        Undo-ExmitMitigation -All -Target image:x -ExmitPath $fake -WhatIf
        @(Get-Content (Join-Path $folder 'calls.log')) | Should -Be @(
            'apply owa-csp-xss tokencache-module --target image:x --dry-run --json',
            'apply --needed --target image:x --allow-breaking --dry-run --json',
            'rollback --all --target image:x --dry-run --json'
        )
    }
}

# These need exmit apply, rollback and status (issue 8); they pass once that lands.
Describe 'apply, status and rollback on a copy of the example image' {
    BeforeAll {
        $script:Copy = Join-Path $TestDrive 'e19'
        Copy-Item -Recurse -LiteralPath (Join-Path $RepoRoot 'examples/e19-cu12-oct22su') -Destination $Copy
        $script:AppHost = Join-Path $Copy 'fs/C/Windows/System32/inetsrv/config/applicationHost.config'
        $script:Before = (Get-FileHash -LiteralPath $AppHost -Algorithm SHA256).Hash
        function Get-ImageState {
            @(Get-ChildItem -LiteralPath $Copy -Recurse -File -Force | Sort-Object FullName | ForEach-Object { '{0} {1}' -f $_.FullName, (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash })
        }
    }

    It 'Invoke-ExmitMitigation -WhatIf changes nothing' {
        $state = Get-ImageState
        $out = @(Invoke-ExmitMitigation proxynotshell-autodiscover -Target "image:$Copy" -StateDir $StateDir -ExmitPath $Cli -WhatIf)
        $out.Count | Should -Be 0
        Get-ImageState | Should -Be $state
    }

    It 'applies, shows it in status, and rolls back to the same bytes' {
        $applied = @(Invoke-ExmitMitigation proxynotshell-autodiscover -Target "image:$Copy" -StateDir $StateDir -ExmitPath $Cli -Force)
        $applied.Count | Should -Be 1
        $applied[0].Outcome | Should -Be 'applied'
        (Get-FileHash -LiteralPath $AppHost -Algorithm SHA256).Hash | Should -Not -Be $Before
        (Get-ExmitAudit -Target "image:$Copy" -StateDir $StateDir -ExmitPath $Cli | Where-Object Id -eq proxynotshell-autodiscover).Status | Should -Be 'mitigated'

        $status = @(Get-ExmitStatus -Target "image:$Copy" -StateDir $StateDir -ExmitPath $Cli)
        @($status.Id) | Should -Be @('proxynotshell-autodiscover')
        $status[0].InPlace | Should -Be $true

        $undone = @($status | Undo-ExmitMitigation -Target "image:$Copy" -StateDir $StateDir -ExmitPath $Cli -Force)
        $undone[0].Outcome | Should -Be 'rolled-back'
        (Get-FileHash -LiteralPath $AppHost -Algorithm SHA256).Hash | Should -Be $Before
        @(Get-ExmitStatus -Target "image:$Copy" -StateDir $StateDir -ExmitPath $Cli).Count | Should -Be 0
    }

    It 'an unknown mitigation id is exit 2, an error naming it' {
        $record = Get-TerminatingError { Invoke-ExmitMitigation no-such-mitigation -Target "image:$Copy" -StateDir $StateDir -ExmitPath $Cli -Force }
        $record.FullyQualifiedErrorId | Should -Be 'Exmit.Exit2,Invoke-ExmitMitigation'
        $record.Exception.Message | Should -Match 'no-such-mitigation'
        (Get-FileHash -LiteralPath $AppHost -Algorithm SHA256).Hash | Should -Be $Before
    }
}
