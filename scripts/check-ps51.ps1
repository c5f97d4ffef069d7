<#
.SYNOPSIS
    Fails when a PowerShell file uses syntax that Windows PowerShell 5.1 lacks, or is not ASCII.

.DESCRIPTION
    Parses each .ps1 file with the PowerShell parser and reports, as file:line: message, ternary
    operators, pipeline chains (&& ||), null-coalescing (?? ??=), null-conditional access (?. ?[),
    ForEach-Object -Parallel, clean {} blocks, ConvertFrom-Json -AsHashtable/-Depth, Join-Path with
    more than two paths, and any non-ASCII byte. Exits 1 when it finds one, else 0.

.PARAMETER Path
    Files or folders to check; by default engine/ (the sources in engine/src and the built
    engine/exmit-engine.ps1), scripts/ and test/pester/ of this repository.
#>
[CmdletBinding()]
param([string[]]$Path)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

function Get-CheckedFiles {
    param([string[]]$Paths)
    foreach ($item in $Paths) {
        if (Test-Path -LiteralPath $item -PathType Container) {
            Get-ChildItem -LiteralPath $item -Recurse -File -Filter '*.ps1' | Sort-Object FullName | ForEach-Object { $_.FullName }
        } elseif (Test-Path -LiteralPath $item -PathType Leaf) {
            (Resolve-Path -LiteralPath $item).ProviderPath
        }
    }
}

function Test-ParameterPrefix {
    # PowerShell accepts any unambiguous prefix of a parameter name.
    param([string]$Given, [string]$Full, [int]$MinLength)
    return ($Given.Length -ge $MinLength -and $Full.StartsWith($Given, [System.StringComparison]::OrdinalIgnoreCase))
}

function Get-Ps51Findings {
    param([string]$File)
    $findings = New-Object System.Collections.Generic.List[string]
    $add = {
        param([int]$Line, [string]$Message)
        $findings.Add(('{0}:{1}: {2}' -f $File, $Line, $Message))
    }

    $bytes = [System.IO.File]::ReadAllBytes($File)
    $line = 1
    $reported = @{}
    foreach ($b in $bytes) {
        if ($b -eq 10) { $line++ }
        elseif ($b -gt 127 -and -not $reported.ContainsKey($line)) {
            $reported[$line] = $true
            & $add $line 'non-ASCII character'
        }
    }

    $tokens = $null
    $errors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseFile($File, [ref]$tokens, [ref]$errors)
    foreach ($parseError in $errors) {
        & $add $parseError.Extent.StartLineNumber ('parse error: ' + $parseError.Message)
    }

    foreach ($token in $tokens) {
        switch ([string]$token.Kind) {
            'QuestionQuestion' { & $add $token.Extent.StartLineNumber 'null-coalescing operator ?? (PowerShell 7 only)' }
            'QuestionQuestionEquals' { & $add $token.Extent.StartLineNumber 'null-coalescing assignment ??= (PowerShell 7 only)' }
        }
    }

    $nodes = $ast.FindAll({ $true }, $true)
    foreach ($node in $nodes) {
        $typeName = $node.GetType().Name
        $lineNumber = $node.Extent.StartLineNumber
        if ($typeName -eq 'TernaryExpressionAst') {
            & $add $lineNumber 'ternary operator ?: (PowerShell 7 only)'
        } elseif ($typeName -eq 'PipelineChainAst') {
            & $add $lineNumber 'pipeline chain && / || (PowerShell 7 only)'
        } elseif ($typeName -eq 'MemberExpressionAst' -or $typeName -eq 'InvokeMemberExpressionAst' -or $typeName -eq 'IndexExpressionAst') {
            # ${a}?.b and ${a}?[0]; note that $a?.b is the variable 'a?' in every version.
            $nullConditional = $node.PSObject.Properties['NullConditional']
            if ($null -ne $nullConditional -and $nullConditional.Value -eq $true) {
                & $add $lineNumber 'null-conditional access (PowerShell 7 only)'
            }
        } elseif ($typeName -eq 'ScriptBlockAst') {
            $clean = $node.PSObject.Properties['CleanBlock']
            if ($null -ne $clean -and $null -ne $clean.Value) {
                & $add $clean.Value.Extent.StartLineNumber 'clean {} block (PowerShell 7.3 only)'
            }
        } elseif ($typeName -eq 'CommandAst') {
            $name = $node.GetCommandName()
            if ($null -eq $name) { continue }
            $parameters = @($node.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] })
            if ($name -eq 'ForEach-Object' -or $name -eq 'foreach' -or $name -eq '%') {
                foreach ($p in $parameters) {
                    if (Test-ParameterPrefix $p.ParameterName 'Parallel' 2) { & $add $lineNumber 'ForEach-Object -Parallel (PowerShell 7 only)' }
                }
            }
            if ($name -eq 'ConvertFrom-Json') {
                foreach ($p in $parameters) {
                    if (Test-ParameterPrefix $p.ParameterName 'AsHashtable' 2) { & $add $lineNumber 'ConvertFrom-Json -AsHashtable (PowerShell 6 only)' }
                    if (Test-ParameterPrefix $p.ParameterName 'Depth' 1) { & $add $lineNumber 'ConvertFrom-Json -Depth (PowerShell 6.2 only)' }
                    if (Test-ParameterPrefix $p.ParameterName 'NoEnumerate' 1) { & $add $lineNumber 'ConvertFrom-Json -NoEnumerate (PowerShell 6 only)' }
                }
            }
            if ($name -eq 'Join-Path') {
                $positional = @($node.CommandElements | Select-Object -Skip 1 | Where-Object { $_ -isnot [System.Management.Automation.Language.CommandParameterAst] })
                $named = @($parameters | Where-Object { $_.ParameterName -match '^(Path|ChildPath)$' })
                $additional = @($parameters | Where-Object { Test-ParameterPrefix $_.ParameterName 'AdditionalChildPath' 2 })
                if ($additional.Count -gt 0 -or ($positional.Count + $named.Count) -gt 2) {
                    & $add $lineNumber 'Join-Path with more than two paths (PowerShell 6 only)'
                }
            }
        }
    }
    return , $findings
}

$repoRoot = Split-Path -Parent $PSScriptRoot
if (-not $Path -or $Path.Count -eq 0) {
    $Path = @(
        (Join-Path $repoRoot 'engine'),
        (Join-Path $repoRoot 'scripts'),
        (Join-Path $repoRoot 'test/pester')
    )
}
$files = @(Get-CheckedFiles $Path)
$all = New-Object System.Collections.Generic.List[string]
foreach ($file in $files) {
    foreach ($finding in (Get-Ps51Findings -File $file)) { $all.Add($finding) }
}
if ($all.Count -gt 0) {
    foreach ($finding in $all) { [Console]::Out.WriteLine($finding) }
    [Console]::Out.WriteLine(('check-ps51: {0} problem(s) in {1} file(s) checked' -f $all.Count, $files.Count))
    exit 1
}
[Console]::Out.WriteLine(('check-ps51: {0} file(s) checked, no PowerShell 7-only syntax' -f $files.Count))
exit 0
