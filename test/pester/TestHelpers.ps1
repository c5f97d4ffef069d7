# Shared by the *.Tests.ps1 files (dot-sourced in BeforeAll): paths and a server image made of the
# real captures in test/fixtures/clixml.
Set-StrictMode -Version Latest

$script:RepoRoot = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
$script:EnginePath = Join-Path $script:RepoRoot 'engine/exmit-engine.ps1'
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
