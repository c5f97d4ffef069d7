# Shared by the *.Tests.ps1 files (dot-sourced in BeforeAll): paths and a server image made of the
# real captures in test/fixtures/clixml.
#
# Tests load the engine's SOURCES, in build order, in their BeforeAll (a function here could not
# define them in the caller's scope):
#     foreach ($engineSource in $EngineSources) { . $engineSource -NoRun }
# Tests that run the engine as a child process start the BUILT file ($EnginePath; node scripts/run-pester.ts builds it).
Set-StrictMode -Version Latest

$script:RepoRoot = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
$script:EnginePath = Join-Path $script:RepoRoot 'engine/exmit-engine.ps1'
# engine/src/*.ps1 in the order scripts/build-engine.ts joins them (ordinal by name).
$script:EngineSources = [System.IO.Directory]::GetFiles((Join-Path $script:RepoRoot 'engine/src'), '*.ps1')
[System.Array]::Sort($script:EngineSources, [System.StringComparer]::Ordinal)
$script:FixtureDir = Join-Path $script:RepoRoot 'test/fixtures/clixml'
# The PowerShell that runs the tests (the process itself may be a dotnet host).
if ($PSVersionTable.PSVersion.Major -ge 6) {
    $script:PwshPath = Join-Path $PSHOME 'pwsh'
    if ([System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Win32NT) { $script:PwshPath += '.exe' }
} else {
    $script:PwshPath = Join-Path $PSHOME 'powershell.exe'
}

function Get-Fixture {
    param([string]$Name)
    return (Join-Path $script:FixtureDir $Name)
}

function New-TestImage {
    <# Makes a server image in Root from the captures; file names in odd case on purpose. #>
    param(
        [string]$Root,
        [string]$ServicesFixture = 'GetService.xml',
        [string[]]$Without = @()
    )
    $null = New-Item -ItemType Directory -Force -Path $Root
    $files = [ordered]@{
        'Registry.xml'    = 'registry.xml'
        'exsetup.xml'     = 'ExSetup.xml'
        'SERVICES.xml'    = $ServicesFixture
        'cachtokn.xml'    = 'GetVersionInformationCachTokn.xml'
        'os.xml'          = 'os.xml'
        'environment.xml' = 'environment.xml'
        'apppools.xml'    = 'apppools.xml'
    }
    foreach ($name in $files.Keys) {
        if ($Without -contains $name.ToLowerInvariant()) { continue }
        Copy-Item -LiteralPath (Get-Fixture $files[$name]) -Destination (Join-Path $Root $name)
    }
    if ($Without -notcontains 'applicationhost.config') {
        # environment.xml says windir=C:\windows; the image has Windows/System32/inetsrv.
        $config = Join-Path $Root 'fs/C/Windows/System32/inetsrv/config'
        $null = New-Item -ItemType Directory -Force -Path $config
        Copy-Item -LiteralPath (Get-Fixture 'applicationHost.config') -Destination (Join-Path $config 'applicationHost.config')
    }
    return $Root
}

function ConvertTo-TestJson {
    param($InputObject)
    return (ConvertTo-Json -InputObject $InputObject -Depth 12 -Compress)
}

function ConvertFrom-TestData {
    <# The text of a base64 `data` field read as UTF-8 (BOM kept as U+FEFF), for matching; $null stays $null. #>
    param($Data)
    if ($null -eq $Data) { return $null }
    return [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($Data))
}

function Get-TestFileSha256 {
    <# A file's SHA-256 as lowercase hex, by Get-FileHash (not by the engine's code). #>
    param([string]$Path)
    return (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.ToLowerInvariant()
}

function Start-TestEngineProcess {
    <#
    Starts a PowerShell child on a script (the built engine by default) with stdin, stdout and stderr
    redirected; stdin stays open. Stdout is copied as raw bytes, so that a BOM would show.
    #>
    param([string]$ScriptPath = $script:EnginePath, [hashtable]$Environment = @{})
    $info = New-Object System.Diagnostics.ProcessStartInfo
    $info.FileName = $script:PwshPath
    $info.Arguments = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -File "' + $ScriptPath + '"'
    $info.UseShellExecute = $false
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    foreach ($name in $Environment.Keys) { $info.EnvironmentVariables[$name] = [string]$Environment[$name] }
    $process = [System.Diagnostics.Process]::Start($info)
    $stdin = New-Object System.IO.StreamWriter $process.StandardInput.BaseStream, (New-Object System.Text.UTF8Encoding $false)
    $stdin.NewLine = "`n"
    $stdin.AutoFlush = $true
    $stdout = New-Object System.IO.MemoryStream
    return [pscustomobject]@{
        Process    = $process
        Stdin      = $stdin
        Stdout     = $stdout
        StdoutTask = $process.StandardOutput.BaseStream.CopyToAsync($stdout)
        StderrTask = $process.StandardError.ReadToEndAsync()
    }
}

function Invoke-TestEngine {
    <#
    Runs the built engine on request lines (UTF-8, no BOM; stdin closed after them) and returns its
    stdout (Raw, Bytes, non-empty Lines), Stderr and ExitCode. Environment adds variables (EXMIT_TEST_HOOKS).
    #>
    param([string[]]$Lines, [hashtable]$Environment = @{})
    $engine = Start-TestEngineProcess -Environment $Environment
    foreach ($line in $Lines) { $engine.Stdin.WriteLine($line) }
    $engine.Stdin.Close()
    if (-not $engine.Process.WaitForExit(120000)) { $engine.Process.Kill(); throw 'engine did not exit' }
    $engine.StdoutTask.Wait()
    $bytes = $engine.Stdout.ToArray()
    $text = (New-Object System.Text.UTF8Encoding $false).GetString($bytes)
    return [pscustomobject]@{
        Raw      = $text
        Bytes    = $bytes
        Lines    = @($text -split "`n" | Where-Object { $_ -ne '' })
        Stderr   = $engine.StderrTask.Result
        ExitCode = $engine.Process.ExitCode
    }
}
