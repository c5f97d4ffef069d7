<#
.SYNOPSIS
    Runs check-ps51.ps1, then the Pester 5 tests of test/pester; exits non-zero on any failure.

.DESCRIPTION
    Pester is loaded from EXMIT_PESTER (a path to Pester.psd1) or from
    .tools/Pester/5.7.1/Pester.psd1 in this repository. The last line of output is always
    "Pester: N passed, N failed".
#>
[CmdletBinding()]
param()

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$repoRoot = Split-Path -Parent $PSScriptRoot
$failed = $false

& (Join-Path $PSScriptRoot 'check-ps51.ps1')
if ($LASTEXITCODE -ne 0) {
    $failed = $true
    [Console]::Out.WriteLine('check-ps51: FAILED')
}

$pesterPath = $env:EXMIT_PESTER
if (-not $pesterPath) { $pesterPath = Join-Path $repoRoot '.tools/Pester/5.7.1/Pester.psd1' }
if (-not (Test-Path -LiteralPath $pesterPath -PathType Leaf)) {
    [Console]::Out.WriteLine(('Pester not found at {0}: set EXMIT_PESTER to a Pester.psd1 (5.x)' -f $pesterPath))
    [Console]::Out.WriteLine('Pester: 0 passed, 1 failed')
    exit 1
}
Import-Module -Name $pesterPath -Force

$configuration = New-PesterConfiguration
$configuration.Run.Path = @(Join-Path $repoRoot 'test/pester')
$configuration.Run.PassThru = $true
$configuration.Run.Exit = $false
$configuration.Output.Verbosity = 'Detailed'
$result = Invoke-Pester -Configuration $configuration

$failedCount = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
if ($failedCount -gt 0 -or $result.Result -ne 'Passed') { $failed = $true }
[Console]::Out.WriteLine(('Pester: {0} passed, {1} failed' -f $result.PassedCount, $failedCount))
if ($failed) { exit 1 }
exit 0
