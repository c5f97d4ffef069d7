# The live target through mocks of the thin wrappers, fed by the real captures (Import-Clixml).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    foreach ($engineSource in $EngineSources) { . $engineSource -NoRun }

    $script:AppHostWindowsPath = 'C:\windows\System32\inetsrv\config\applicationHost.config'
    $script:OwaPath = 'C:\Program Files\Microsoft\Exchange Server\V15\FrontEnd\HttpProxy\owa'

    function Set-LiveMocks {
        Mock Get-ExmitEnvironment { Import-Clixml -LiteralPath (Get-Fixture 'environment.xml') }
        Mock Get-ExmitRegistryKeys { Import-Clixml -LiteralPath (Get-Fixture 'registry.xml') }
        Mock Get-ExmitServices { Import-Clixml -LiteralPath (Get-Fixture 'GetService.xml') }
        Mock Get-ExmitOperatingSystem { Import-Clixml -LiteralPath (Get-Fixture 'os.xml') }
        Mock Get-ExmitAppPools { Import-Clixml -LiteralPath (Get-Fixture 'apppools.xml') }
        Mock Get-ExmitFileVersion { $null }
        Mock Get-ExmitFileVersion { Import-Clixml -LiteralPath (Get-Fixture 'ExSetup.xml') } -ParameterFilter { $Path -eq 'C:\Program Files\Microsoft\Exchange Server\V15\bin\ExSetup.exe' }
        Mock Get-ExmitFileVersion { Import-Clixml -LiteralPath (Get-Fixture 'GetVersionInformationCachTokn.xml') } -ParameterFilter { $Path -eq 'C:\windows\System32\inetsrv\cachtokn.dll' }
        Mock Get-ExmitFileBytes { $null }
        Mock Get-ExmitFileBytes { , [System.IO.File]::ReadAllBytes((Get-Fixture 'applicationHost.config')) } -ParameterFilter { $Path -eq $AppHostWindowsPath }
        Mock Get-ExmitFileBytes { , [System.IO.File]::ReadAllBytes((Get-Fixture 'DefaultWebSite_web.config')) } -ParameterFilter { $Path -eq 'C:\inetpub\wwwroot\web.config' }
        Mock Get-ExmitFileBytes { , [System.IO.File]::ReadAllBytes((Get-Fixture 'DefaultWebSite-OWA_web.config')) } -ParameterFilter { $Path -eq ($OwaPath + '\web.config') -or $Path -eq ($OwaPath + '\auth\web.config') }
        Mock Get-ExmitIisPhysicalPaths { '%SystemDrive%\inetpub\wwwroot'; $OwaPath; $OwaPath; '' }
        Mock Find-ExmitWebConfigFiles { @() }
        Mock Find-ExmitWebConfigFiles { @(($OwaPath + '\web.config'), ($OwaPath + '\auth\web.config')) } -ParameterFilter { $Directory -eq $OwaPath }
    }

    function Get-ComparableJson {
        param($Facts)
        $copy = [ordered]@{}
        foreach ($key in $Facts.Keys) { if ($key -ne 'target') { $copy[$key] = $Facts[$key] } }
        return (ConvertTo-TestJson $copy)
    }
}

Describe 'gather on the local target (mocked wrappers)' {
    BeforeAll {
        Set-LiveMocks
        $script:Live = Get-ExmitLocalFacts
        $script:FromImage = Get-ExmitImageFacts -Path (New-TestImage -Root (Join-Path $TestDrive 'image'))
    }

    It 'gives the same facts as an image made of the same captures' {
        $Live.target.kind | Should -Be 'local'
        $Live.target.path | Should -BeNullOrEmpty
        $Live.target.computerName | Should -Be 'SOLO-E19A'
        (Get-ComparableJson $Live) | Should -Be (Get-ComparableJson $FromImage)
    }

    It 'normalises live values: services, versions, app pools' {
        $Live.exsetup.version | Should -Be '15.2.986.5'
        $Live.cachtokn.version | Should -Be '10.0.17763.0'
        $Live.services.Count | Should -Be 254
        ($Live.services | Where-Object { $_.name -eq 'MSExchangeMitigation' }).startType | Should -Be 'Automatic'
        ($Live.appPools | Where-Object { $_.name -eq 'MSExchangeOABAppPool' }).state | Should -Be 'Stopped'
        @($Live.missing).Count | Should -Be 0
        Should -Invoke Get-ExmitServices -Times 1 -Exactly -Scope Describe
        Should -Invoke Get-ExmitFileVersion -Times 1 -Exactly -Scope Describe -ParameterFilter { $Path -like '*ExSetup.exe' }
    }

    It 'reads live enums and FileVersionInfo-like objects the same way' {
        $service = [pscustomobject]@{ ServiceName = 'MSExchangeUM'; DisplayName = 'UM'; Status = [System.DayOfWeek]::Monday; StartType = 4 }
        $facts = ConvertTo-ExmitServiceFacts -Objects @($service) -Kind environment
        $facts[0].status | Should -Be 'Stopped'
        $facts[0].startType | Should -Be 'Disabled'
        $version = [pscustomobject]@{ FileMajorPart = 15; FileMinorPart = 1; FileBuildPart = 2507; FilePrivatePart = 6; FileVersion = '15.01.2507.006'; FileName = 'C:\x\ExSetup.exe' }
        (ConvertTo-ExmitFileVersionFact -Object $version -Source 'exsetup.xml').version | Should -Be '15.1.2507.6'
    }

    It 'says what is absent: no Exchange, no IIS' {
        Mock Get-ExmitRegistryKeys { $null }
        Mock Get-ExmitAppPools { $null }
        Mock Get-ExmitFileBytes { $null } -ParameterFilter { $Path -eq $AppHostWindowsPath }
        Mock Get-ExmitEnvironment { Import-Clixml -LiteralPath (Get-Fixture 'environment.xml') | Where-Object { $_.Key -ne 'ExchangeInstallPath' } }
        $facts = Get-ExmitLocalFacts
        $facts.registry | Should -BeNullOrEmpty
        $facts.exsetup | Should -BeNullOrEmpty
        $facts.applicationHost | Should -BeNullOrEmpty
        $facts.missing | Should -Contain 'apppools.xml'
        $facts.missing | Should -Contain 'applicationHost.config'
        $facts.missing | Should -Contain 'exsetup.xml'
    }

    It 'turns a failing source into an environment error naming it' {
        Mock Get-ExmitServices { throw 'Access is denied' }
        try {
            $null = Get-ExmitLocalFacts
            throw 'no error'
        } catch {
            $e = ConvertTo-ExmitErrorObject $_
        }
        $e.kind | Should -Be 'environment'
        $e.file | Should -Be 'services.xml'
        $e.message | Should -Match 'Access is denied'
    }

    It 'asks Get-ExmitServices for the services named, and returns only those' {
        $facts = Get-ExmitLocalFacts -Services @('msexchangemitigation', 'W3SVC', 'NoSuchService')
        @($facts.services | ForEach-Object { $_.name }) -join ',' | Should -Be (@($Live.services | Where-Object { $_.name -eq 'MSExchangeMitigation' -or $_.name -eq 'W3SVC' } | ForEach-Object { $_.name }) -join ',')
        @($facts.services).Count | Should -Be 2
        Should -Invoke Get-ExmitServices -Times 1 -Exactly -ParameterFilter { ($Name -join ',') -eq 'msexchangemitigation,W3SVC,NoSuchService' }
    }

    It 'reads files on the local target through Get-ExmitFileBytes, refusing ..' {
        $result = Read-ExmitLocalFiles -Paths @('C:\inetpub\wwwroot\web.config', 'C:\inetpub\nothing.config')
        (ConvertFrom-TestData $result.files[0].data) | Should -Match '<configuration'
        $result.files[0].sha256 | Should -Be (Get-TestFileSha256 (Get-Fixture 'DefaultWebSite_web.config'))
        $result.files[1].data | Should -BeNullOrEmpty
        $result.files[1].sha256 | Should -BeNullOrEmpty
        try { $null = Read-ExmitLocalFiles -Paths @('C:\inetpub\..\Windows\win.ini'); throw 'no error' } catch { (ConvertTo-ExmitErrorObject $_).kind | Should -Be 'input' }
        Should -Invoke Get-ExmitFileBytes -Times 0 -ParameterFilter { $Path -like '*win.ini' }
    }
}

Describe 'preflight' {
    It 'reports edition, bitness, language mode and policy; elevation null off Windows' {
        $result = Invoke-ExmitRequest -Request ([pscustomobject]@{ id = 1; op = 'preflight'; target = [pscustomobject]@{ kind = 'local' } })
        $result.psVersion | Should -Be $PSVersionTable.PSVersion.ToString()
        $result.is64BitProcess | Should -Be ([System.Environment]::Is64BitProcess)
        $result.languageMode | Should -Be 'FullLanguage'
        $result.executionPolicy | Should -Not -BeNullOrEmpty
        if (Test-ExmitWindows) { $result.elevated | Should -BeOfType [bool] } else { $result.elevated | Should -BeNullOrEmpty; $result.platform | Should -Be 'Unix' }
    }
}

Describe 'collect (mocked wrappers)' {
    BeforeAll {
        Set-LiveMocks
        $script:Out = Join-Path $TestDrive 'collected'
        $script:Collected = Invoke-ExmitRequest -Request ([pscustomobject]@{ id = 2; op = 'collect'; target = [pscustomobject]@{ kind = 'local' }; out = $Out })
    }

    It 'writes the exports and the IIS files at their Windows paths' {
        $written = @($Collected.written)
        foreach ($name in @('environment.xml', 'registry.xml', 'exsetup.xml', 'services.xml', 'cachtokn.xml', 'os.xml', 'apppools.xml')) {
            $written | Should -Contain $name
            Test-Path -LiteralPath (Join-Path $Out $name) | Should -BeTrue
        }
        $written | Should -Contain 'fs/C/windows/System32/inetsrv/config/applicationHost.config'
        $written | Should -Contain 'fs/C/inetpub/wwwroot/web.config'
        $written | Should -Contain 'fs/C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy/owa/web.config'
        $written | Should -Contain 'fs/C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy/owa/auth/web.config'
        @($written | Where-Object { $_ -like '*owa/web.config' }).Count | Should -Be 1
        [System.IO.File]::ReadAllBytes((Join-Path $Out 'fs/C/inetpub/wwwroot/web.config')).Length | Should -Be ([System.IO.File]::ReadAllBytes((Get-Fixture 'DefaultWebSite_web.config')).Length)
    }

    It 'asks each wrapper once' {
        Should -Invoke Get-ExmitServices -Times 1 -Exactly -Scope Describe
        Should -Invoke Get-ExmitRegistryKeys -Times 1 -Exactly -Scope Describe
        Should -Invoke Get-ExmitAppPools -Times 1 -Exactly -Scope Describe
        Should -Invoke Get-ExmitOperatingSystem -Times 1 -Exactly -Scope Describe
        Should -Invoke Get-ExmitIisPhysicalPaths -Times 1 -Exactly -Scope Describe
        Should -Invoke Find-ExmitWebConfigFiles -Times 1 -Exactly -Scope Describe -ParameterFilter { $Directory -eq 'C:\inetpub\wwwroot' }
    }

    It 'makes an image whose facts equal the live facts' {
        $fromImage = Get-ExmitImageFacts -Path $Out
        (Get-ComparableJson $fromImage) | Should -Be (Get-ComparableJson (Get-ExmitLocalFacts))
    }

    It 'refuses a folder that is not empty, and changes nothing under -WhatIf' {
        try {
            $null = Invoke-ExmitCollect -Out $Out
            throw 'no error'
        } catch {
            (ConvertTo-ExmitErrorObject $_).message | Should -Match 'not empty'
        }
        $other = Join-Path $TestDrive 'whatif'
        $result = Invoke-ExmitCollect -Out $other -WhatIf
        @($result.written).Count | Should -Be 0
        Test-Path -LiteralPath $other | Should -BeFalse
        Should -Invoke Get-ExmitServices -Times 0 -Exactly
    }

    It 'refuses an image target and a relative folder' {
        { Invoke-ExmitRequest -Request ([pscustomobject]@{ op = 'collect'; target = [pscustomobject]@{ kind = 'image'; path = $TestDrive }; out = (Join-Path $TestDrive 'x') }) } | Should -Throw '*must be local*'
        { Invoke-ExmitRequest -Request ([pscustomobject]@{ op = 'collect'; target = [pscustomobject]@{ kind = 'local' }; out = 'relative/dir' }) } | Should -Throw '*absolute*'
    }
}
