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

Describe 'collect: failures, unreadable files, configSource files and repeated folders (mocked wrappers)' {
    BeforeEach {
        Set-LiveMocks
    }

    It 'leaves nothing behind when it fails half-way (it writes into a temporary folder and renames it at the end)' {
        Mock Get-ExmitServices { throw 'Access is denied' }
        $out = Join-Path $TestDrive 'failed'
        try { $null = Invoke-ExmitCollect -Out $out; throw 'no error' } catch { (ConvertTo-ExmitErrorObject $_).file | Should -Be 'services.xml' }
        Test-Path -LiteralPath $out | Should -BeFalse
        @(Get-ChildItem -LiteralPath $TestDrive -Force -Filter '*failed*').Count | Should -Be 0
    }

    It 'fills an existing empty folder, leaving no temporary folder beside it' {
        $out = Join-Path $TestDrive 'empty'
        $null = New-Item -ItemType Directory -Path $out
        $result = Invoke-ExmitCollect -Out $out
        @($result.written) | Should -Contain 'services.xml'
        Test-Path -LiteralPath (Join-Path $out 'services.xml') | Should -BeTrue
        @(Get-ChildItem -LiteralPath $TestDrive -Force -Filter '*empty*').Count | Should -Be 1
    }

    It 'records an unreadable web.config in skipped and collect-errors.txt, and copies the rest' {
        Mock Get-ExmitFileBytes { throw 'The process cannot access the file because it is being used by another process.' } -ParameterFilter { $Path -eq ($OwaPath + '\auth\web.config') }
        $out = Join-Path $TestDrive 'unreadable'
        $result = Invoke-ExmitCollect -Out $out
        @($result.written) | Should -Contain 'fs/C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy/owa/web.config'
        @($result.written) | Should -Not -Contain 'fs/C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy/owa/auth/web.config'
        @($result.skipped).Count | Should -Be 1
        $result.skipped[0].path | Should -Be ($OwaPath + '\auth\web.config')
        $result.skipped[0].reason | Should -Match 'being used by another process'
        @($result.written) | Should -Contain 'collect-errors.txt'
        [System.IO.File]::ReadAllText((Join-Path $out 'collect-errors.txt')) | Should -Match ([regex]::Escape($OwaPath + '\auth\web.config') + "`t" + 'not readable: .*being used by another process')
    }

    It 'copies the files configSource attributes name, relative to the file, and refuses those outside its folder' {
        $config = '<configuration><system.webServer><rewrite><rules configSource="rules\rewrite.config" /></rewrite>' +
            '<security configSource="..\..\Windows\win.ini" /><defaultDocument configSource="C:\Windows\win.ini" /></system.webServer></configuration>'
        Mock Get-ExmitFileBytes { , [System.Text.Encoding]::UTF8.GetBytes($config) } -ParameterFilter { $Path -eq 'C:\inetpub\wwwroot\web.config' }
        Mock Get-ExmitFileBytes { , [System.Text.Encoding]::UTF8.GetBytes('<rules />') } -ParameterFilter { $Path -eq 'C:\inetpub\wwwroot\rules\rewrite.config' }
        $out = Join-Path $TestDrive 'configsource'
        $result = Invoke-ExmitCollect -Out $out
        @($result.written) | Should -Contain 'fs/C/inetpub/wwwroot/rules/rewrite.config'
        [System.IO.File]::ReadAllText((Join-Path $out 'fs/C/inetpub/wwwroot/rules/rewrite.config')) | Should -Be '<rules />'
        $refused = @($result.skipped | Where-Object { $_.path -eq 'C:\inetpub\wwwroot\web.config' })
        $refused.Count | Should -Be 2
        $refused[0].reason | Should -Match '^configSource="\.\.\\\.\.\\Windows\\win\.ini" is not a path inside the folder'
        $refused[1].reason | Should -Match 'configSource="C:\\Windows\\win\.ini"'
        Should -Invoke Get-ExmitFileBytes -Times 0 -ParameterFilter { $Path -like '*win.ini' }
    }

    It 'walks each folder IIS names once, whatever its case or trailing backslash' {
        Mock Get-ExmitIisPhysicalPaths { $OwaPath; $OwaPath.ToUpperInvariant(); ($OwaPath + '\'); '%SystemDrive%\inetpub\wwwroot'; 'c:\INETPUB\wwwroot\' }
        $null = Invoke-ExmitCollect -Out (Join-Path $TestDrive 'once')
        Should -Invoke Find-ExmitWebConfigFiles -Times 2 -Exactly
    }
}

Describe 'collect: the folder walk (real folders and links)' {
    BeforeAll {
        $script:Site = Join-Path $TestDrive 'site'
        $outside = Join-Path $TestDrive 'outside'
        foreach ($folder in @($Site, (Join-Path $Site 'a/b'), (Join-Path $Site 'c'), $outside)) { $null = New-Item -ItemType Directory -Force -Path $folder }
        foreach ($file in @('web.config', 'a/web.config', 'a/b/WEB.CONFIG', 'c/other.config')) { [System.IO.File]::WriteAllText((Join-Path $Site $file), '<configuration />') }
        [System.IO.File]::WriteAllText((Join-Path $outside 'web.config'), '<configuration />')
        # A junction-like link out of the content, a loop back to its top, and a file link out.
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $Site 'linked-out') -Target $outside
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $Site 'a/loop') -Target $Site
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $Site 'c/web.config') -Target (Join-Path $outside 'web.config')
    }

    It 'finds the web.config files below a folder (any case), never following links' {
        $state = New-ExmitWalkState
        $found = @(Find-ExmitWebConfigFiles -Directory $Site -State $state)
        $found | Should -Be @((Join-Path $Site 'web.config'), (Join-Path $Site 'a/web.config'), (Join-Path $Site 'a/b/WEB.CONFIG'))
        $links = @($state.Skipped | Where-Object { $_.reason -match '^a link or junction' } | ForEach-Object { $_.path } | Sort-Object)
        $links | Should -Be @((Join-Path $Site 'a/loop'), (Join-Path $Site 'c/web.config'), (Join-Path $Site 'linked-out'))
    }

    It 'visits each folder once across the walks of one collect (case and trailing separators ignored)' {
        $state = New-ExmitWalkState
        @(Find-ExmitWebConfigFiles -Directory $Site -State $state).Count | Should -Be 3
        @(Find-ExmitWebConfigFiles -Directory (Join-Path $Site 'a') -State $state).Count | Should -Be 0
        @(Find-ExmitWebConfigFiles -Directory ($Site + [System.IO.Path]::DirectorySeparatorChar) -State $state).Count | Should -Be 0
        $state.Folders | Should -Be 4
    }

    It 'walks a folder that is a reparse point but not a link (its tag says so)' {
        Mock Get-ExmitReparseTag { [long]2147483667 } -ParameterFilter { $Path -like '*linked-out' }
        $found = @(Find-ExmitWebConfigFiles -Directory $Site -State (New-ExmitWalkState))
        $found | Should -Contain (Join-Path $TestDrive 'site/linked-out/web.config')
    }

    It 'sends a progress event every 200 folders' {
        $wide = Join-Path $TestDrive 'wide'
        foreach ($index in 1..210) { $null = [System.IO.Directory]::CreateDirectory((Join-Path $wide ('f{0:d3}' -f $index))) }
        Mock Write-ExmitEvent { }
        $null = Find-ExmitWebConfigFiles -Directory $wide -State (New-ExmitWalkState)
        Should -Invoke Write-ExmitEvent -Times 1 -Exactly -ParameterFilter { $Message -like 'collect: 200 folders walked*' }
    }

    It 'stops at its time budget and says so' {
        $state = New-ExmitWalkState -Seconds 0
        Start-Sleep -Milliseconds 20
        @(Find-ExmitWebConfigFiles -Directory $Site -State $state).Count | Should -Be 0
        $state.Skipped[0].reason | Should -Match 'time budget'
    }

    It 'records an unreadable folder and goes on' {
        $locked = Join-Path $TestDrive 'locked'
        $null = New-Item -ItemType Directory -Force -Path (Join-Path $locked 'closed')
        [System.IO.File]::WriteAllText((Join-Path $locked 'web.config'), '<configuration />')
        [System.IO.File]::WriteAllText((Join-Path $locked 'closed/web.config'), '<configuration />')
        # Access is denied the way Windows denies it, whoever runs the test (root reads any folder on Linux).
        Mock Get-ExmitFolderEntries { throw (New-Object System.UnauthorizedAccessException ('Access to the path ''{0}'' is denied.' -f $Folder.FullName)) } -ParameterFilter { $Folder.Name -eq 'closed' }
        $state = New-ExmitWalkState
        @(Find-ExmitWebConfigFiles -Directory $locked -State $state) | Should -Be @((Join-Path $locked 'web.config'))
        $state.Skipped.Count | Should -Be 1
        $state.Skipped[0].path | Should -Be (Join-Path $locked 'closed')
        $state.Skipped[0].reason | Should -Match '^folder not readable: .*is denied'
    }
}
