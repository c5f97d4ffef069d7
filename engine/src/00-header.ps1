<#
.SYNOPSIS
    exmit's PowerShell engine: gathers facts from an Exchange server or a server image.

.DESCRIPTION
    Built from engine/src/*.ps1 by scripts/build-engine.ts into one self-contained file (no
    dot-sourcing), so that it can also be sent to a remote session. Protocol (docs/architecture.md):
    JSON lines on stdin; on stdout, zero or more event lines and then one answer line per request,
    nothing else. Answers {"op":"exit"} and exits 0; exits 0 at end of input too.

    Runs on Windows PowerShell 5.1 and PowerShell 7 alike: keep this file ASCII-only and free of
    7-only syntax (scripts/check-ps51.ps1 enforces it).

.PARAMETER NoRun
    Define the functions only (Pester dot-sources the sources, and tools the built file, with -NoRun).
#>
[CmdletBinding()]
param([switch]$NoRun)

# First statement, in the few constructs constrained language mode allows (no .NET calls, no New-Object):
# application control (WDAC, AppLocker) runs unapproved scripts in ConstrainedLanguage, where the engine
# cannot work. Say so in plain words on stderr (src/powershell/door.ts maps "ConstrainedLanguage") and stop.
if ($ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') {
    Write-Error -Message ('exmit-engine: PowerShell runs this script in {0} mode (not FullLanguage), so the engine cannot run: application control (WDAC or AppLocker) sets this for scripts it does not approve' -f $ExecutionContext.SessionState.LanguageMode) -Category SecurityError -ErrorAction Continue
    exit 1
}

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

# PowerShell 7 ships its command modules' assemblies beside itself. Importing them directly spares the
# first cmdlet call a search of PSModulePath (about 0.2 s of every start). Windows PowerShell 5.1 keeps
# them in the GAC: there, auto-loading stays.
# A host that lacks one of them keeps auto-loading, as before.
if ($PSVersionTable.PSEdition -ceq 'Core') {
    foreach ($exmitModule in @('Microsoft.PowerShell.Commands.Utility', 'Microsoft.PowerShell.Commands.Management', 'Microsoft.PowerShell.Security')) {
        try {
            Import-Module -Assembly ([System.Reflection.Assembly]::Load($exmitModule))
        } catch {
            Write-Verbose ('{0}: left to auto-loading: {1}' -f $exmitModule, $_.Exception.Message)
        }
    }
    Remove-Variable -Name exmitModule
}

# Limits for untrusted input (images can come from compromised servers).
$script:ExmitLimits = @{
    CliXmlBytes        = 64MB   # a CliXml export larger than this is refused by name
    CliXmlChars        = 64MB   # XmlReaderSettings.MaxCharactersInDocument
    CliXmlNesting      = 64     # nested Obj elements
    FileBytes          = 32MB   # readFiles and applicationHost.config
    PathSegments       = 64
    WebConfigs         = 2000   # collect: web.config files copied at most
    CollectWalkSeconds = 1200   # collect: time spent walking folders (the TypeScript side allows collect 30 minutes)
}

$script:ExmitPsNamespace = 'http://schemas.microsoft.com/powershell/2004/04'

# System.ServiceProcess.ServiceControllerStatus
$script:ExmitServiceStatusMap = @{
    1 = 'Stopped'; 2 = 'StartPending'; 3 = 'StopPending'; 4 = 'Running'
    5 = 'ContinuePending'; 6 = 'PausePending'; 7 = 'Paused'
}
# System.ServiceProcess.ServiceStartMode
$script:ExmitServiceStartMap = @{ 0 = 'Boot'; 1 = 'System'; 2 = 'Automatic'; 3 = 'Manual'; 4 = 'Disabled' }
# Microsoft.Web.Administration.ObjectState
$script:ExmitAppPoolStateMap = @{ 0 = 'Starting'; 1 = 'Started'; 2 = 'Stopping'; 3 = 'Stopped'; 4 = 'Unknown' }
# Microsoft.Web.Administration.StartMode
$script:ExmitAppPoolStartModeMap = @{ 0 = 'OnDemand'; 1 = 'AlwaysRunning' }

# Get-ItemProperty adds these to every registry key; they are not registry values.
$script:ExmitRegistryProviderProperties = @('PSPath', 'PSParentPath', 'PSChildName', 'PSDrive', 'PSProvider', 'PSIsContainer')

# The error kinds of the protocol (New-ExmitError); anything else is answered as internal.
$script:ExmitErrorKinds = @('image', 'input', 'environment', 'policy', 'lock', 'conflict', 'step', 'fault', 'internal')

# The image's file names, also used in `missing` for live sources.
$script:ExmitImageFiles = @('registry.xml', 'exsetup.xml', 'services.xml', 'cachtokn.xml', 'os.xml', 'environment.xml', 'apppools.xml')

# Windows PowerShell 5.1 serialises PSObject-wrapped arrays as {"value":[...],"Count":n} because
# of System.Array's type data; this process is ours, so drop it.
if ($PSVersionTable.PSVersion.Major -lt 6) {
    if (Get-TypeData -TypeName System.Array) {
        Remove-TypeData -TypeName System.Array
    }
}
