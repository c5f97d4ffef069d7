# The live target: gather and readFiles on this server, through the wrappers.

function Invoke-ExmitLiveSource {
    <# .SYNOPSIS Runs a wrapper; a failure becomes an environment error naming the source. #>
    param([string]$Name, [scriptblock]$Script)
    try {
        $value = & $Script
    } catch {
        if (Test-ExmitError $_.Exception) { throw }
        throw (New-ExmitError -Kind environment -File $Name -Message ('{0}: cannot be read on this server: {1}' -f $Name, $_.Exception.Message))
    }
    if ($null -eq $value) { return $null }
    return , $value
}

function Get-ExmitInstallPath {
    <# .SYNOPSIS Exchange's install folder from ExchangeInstallPath, else the Setup key's MsiInstallPath. #>
    param($Environment, $Registry)
    if ($null -ne $Environment -and $Environment.Contains('ExchangeInstallPath') -and $Environment['ExchangeInstallPath']) {
        return ([string]$Environment['ExchangeInstallPath']).TrimEnd('\')
    }
    foreach ($key in @($Registry)) {
        if ($null -ne $key -and $key.name -eq 'Setup' -and $key.values.Contains('MsiInstallPath') -and $key.values['MsiInstallPath']) {
            return ([string]$key.values['MsiInstallPath']).TrimEnd('\')
        }
    }
    return $null
}

function Get-ExmitLocalFacts {
    <#
    .SYNOPSIS ServerFacts read from this server, normalised as the image reader does.
    .PARAMETER Services The service names the run cares about (case-insensitive); $null for all.
    #>
    param([string[]]$Services)
    $missing = New-Object System.Collections.Generic.List[string]

    $environment = $null
    $objects = Invoke-ExmitLiveSource 'environment.xml' { Get-ExmitEnvironment }
    if ($null -eq $objects) { $missing.Add('environment.xml') } else {
        $environment = ConvertTo-ExmitEnvironmentFact -Objects @($objects) -Source 'environment.xml' -Kind environment
    }
    $registry = $null
    $objects = Invoke-ExmitLiveSource 'registry.xml' { Get-ExmitRegistryKeys }
    if ($null -ne $objects) {
        $registry = ConvertTo-ExmitRegistryFacts -Objects @($objects) -Source 'registry.xml' -Kind environment
    }
    $windowsDirectory = Get-ExmitWindowsDirectory $environment

    $exsetup = $null
    $installPath = Get-ExmitInstallPath -Environment $environment -Registry $registry
    if ($installPath) {
        $exsetupPath = $installPath + '\bin\ExSetup.exe'
        $object = Invoke-ExmitLiveSource 'exsetup.xml' { Get-ExmitFileVersion -Path $exsetupPath }
        if ($null -ne $object) {
            $exsetup = ConvertTo-ExmitFileVersionFact -Object (@($object) | Select-Object -First 1) -Source 'exsetup.xml' -DefaultFileName $exsetupPath -Kind environment
        }
    }
    if ($null -eq $exsetup) { $missing.Add('exsetup.xml') }

    $serviceFacts = $null
    if ($null -eq $Services) {
        $objects = Invoke-ExmitLiveSource 'services.xml' { Get-ExmitServices }
    } else {
        $objects = Invoke-ExmitLiveSource 'services.xml' { Get-ExmitServices -Name $Services }
    }
    if ($null -eq $objects) { $missing.Add('services.xml') } else {
        $serviceFacts = ConvertTo-ExmitServiceFacts -Objects @($objects) -Source 'services.xml' -Kind environment
        if ($null -ne $Services) { $serviceFacts = Select-ExmitServiceFacts -Facts $serviceFacts -Names $Services }
    }
    $cachtokn = $null
    $cachToknPath = $windowsDirectory + '\System32\inetsrv\cachtokn.dll'
    $object = Invoke-ExmitLiveSource 'cachtokn.xml' { Get-ExmitFileVersion -Path $cachToknPath }
    if ($null -eq $object) { $missing.Add('cachtokn.xml') } else {
        $cachtokn = ConvertTo-ExmitFileVersionFact -Object (@($object) | Select-Object -First 1) -Source 'cachtokn.xml' -DefaultFileName $cachToknPath -Kind environment
    }
    $os = $null
    $objects = Invoke-ExmitLiveSource 'os.xml' { Get-ExmitOperatingSystem }
    if ($null -eq $objects) { $missing.Add('os.xml') } else {
        $os = ConvertTo-ExmitOsFact -Objects @($objects) -Source 'os.xml' -Kind environment
    }
    $appPools = $null
    $objects = Invoke-ExmitLiveSource 'apppools.xml' { Get-ExmitAppPools }
    if ($null -eq $objects) { $missing.Add('apppools.xml') } else {
        $appPools = ConvertTo-ExmitAppPoolFacts -Objects @($objects) -Source 'apppools.xml' -Kind environment
    }
    $applicationHost = $null
    $appHostPath = Get-ExmitApplicationHostPath $windowsDirectory
    $bytes = Invoke-ExmitLiveSource 'applicationHost.config' { Get-ExmitFileBytes -Path $appHostPath }
    if ($null -eq $bytes) { $missing.Add('applicationHost.config') } else {
        $data = ConvertTo-ExmitFileData $bytes
        $applicationHost = [ordered]@{ path = $appHostPath; data = $data.data; sha256 = $data.sha256 }
    }
    $computerName = $null
    if ($null -ne $environment -and $environment.Contains('COMPUTERNAME')) { $computerName = [string]$environment['COMPUTERNAME'] }
    if (-not $computerName) { $computerName = [System.Environment]::MachineName }

    return (New-ExmitFacts -Kind local -Path $null -ComputerName $computerName -Registry $registry -ExSetup $exsetup `
            -Services $serviceFacts -CachTokn $cachtokn -Os $os -Environment $environment -AppPools $appPools `
            -ApplicationHost $applicationHost -Missing $missing.ToArray())
}

function Read-ExmitLocalFiles {
    <# .SYNOPSIS readFiles on this server: each Windows path's bytes (base64) and SHA-256, or nulls when absent. #>
    param([object[]]$Paths)
    $files = New-Object System.Collections.Generic.List[object]
    foreach ($windowsPath in $Paths) {
        $windowsPath = [string]$windowsPath
        $segments = Split-ExmitWindowsPath $windowsPath
        $normalised = $segments[0] + ':\' + (($segments | Select-Object -Skip 1) -join '\')
        $bytes = Invoke-ExmitLiveSource $windowsPath { Get-ExmitFileBytes -Path $normalised }
        $data = ConvertTo-ExmitFileData $bytes
        $files.Add([ordered]@{ path = $windowsPath; data = $data.data; sha256 = $data.sha256 })
    }
    return [ordered]@{ files = [object[]]$files.ToArray() }
}
