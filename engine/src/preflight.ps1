# preflight: what the TypeScript side checks before live work.

function Get-ExmitPreflight {
    <# .SYNOPSIS What the TypeScript side checks before live work: edition, bitness, elevation, language mode, policy. #>
    $platform = 'Unix'
    if (Test-ExmitWindows) { $platform = 'Windows' }
    $edition = 'Desktop'
    if ($PSVersionTable.ContainsKey('PSEdition')) { $edition = [string]$PSVersionTable.PSEdition }
    $policy = $null
    try {
        $policy = [string](Get-ExecutionPolicy)
    } catch {
        Write-Verbose ('execution policy unreadable: {0}' -f $_.Exception.Message)
    }
    return [ordered]@{
        psVersion       = $PSVersionTable.PSVersion.ToString()
        edition         = $edition
        platform        = $platform
        is64BitProcess  = [System.Environment]::Is64BitProcess
        elevated        = (Test-ExmitElevated)
        languageMode    = [string]$ExecutionContext.SessionState.LanguageMode
        executionPolicy = $policy
    }
}
