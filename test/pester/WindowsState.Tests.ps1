# The operations that serve the state folder's ACL, signing keys and the WinHTTP proxy on Windows:
# whoami, security, createSecure, winHttpSettings. Get-Acl, the ACL-aware constructors and the
# registry do not exist off Windows, so their thin wrappers are mocked; the file-system part
# (files, folders, links, missing paths) is real.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    foreach ($engineSource in $EngineSources) { . $engineSource -NoRun }

    $script:ExmitFolderSddl = 'O:BAD:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)'
    # What `netsh winhttp set proxy proxy.contoso.com:8080 "<local>;*.contoso.com"` stores (layout: src/trust/winhttp.ts).
    $script:WinHttpBytes = [byte[]](
        @(0x28, 0, 0, 0, 0x05, 0, 0, 0, 0x03, 0, 0, 0, 22, 0, 0, 0) +
        [System.Text.Encoding]::ASCII.GetBytes('proxy.contoso.com:8080') +
        @(21, 0, 0, 0) + [System.Text.Encoding]::ASCII.GetBytes('<local>;*.contoso.com'))

    function Invoke-Op {
        param([hashtable]$Request)
        return (Invoke-ExmitRequest -Request ([pscustomobject]$Request))
    }
}

Describe 'off Windows the Windows-only operations refuse, and the proxy is absent' {
    It 'refuses <_> with a clear input error' -ForEach @('whoami', 'security', 'createSecure') {
        $op = $_
        $thrown = $null
        try { Invoke-Op @{ op = $op; paths = @('/tmp'); path = '/tmp/x'; kind = 'folder'; sddl = 'D:P' } } catch { $thrown = $_.Exception }
        $thrown | Should -Not -BeNullOrEmpty
        (ConvertTo-ExmitErrorObject $thrown).kind | Should -Be 'input'
        $thrown.Message | Should -Be ('{0}: Windows only' -f $op)
    }

    It 'winHttpSettings answers null without touching the registry' {
        Mock Get-ExmitWinHttpSettings { throw 'must not be called' }
        (Invoke-Op @{ op = 'winHttpSettings' }).value | Should -BeNullOrEmpty
        Should -Invoke Get-ExmitWinHttpSettings -Times 0 -Exactly
    }
}

Describe 'on Windows (mocked wrappers)' {
    BeforeAll {
        Mock Test-ExmitWindows { $true }
    }

    Context 'whoami' {
        It 'returns the SID and elevation from Get-ExmitIdentity' {
            Mock Get-ExmitIdentity { [ordered]@{ sid = 'S-1-5-21-1-2-3-500'; elevated = $true } }
            $answer = Invoke-Op @{ op = 'whoami' }
            $answer.sid | Should -Be 'S-1-5-21-1-2-3-500'
            $answer.elevated | Should -BeTrue
        }

        It 'turns a failure into an environment error naming what could not be read' {
            Mock Get-ExmitIdentity { throw 'the token cannot be opened' }
            $thrown = $null
            try { Invoke-Op @{ op = 'whoami' } } catch { $thrown = $_.Exception }
            (ConvertTo-ExmitErrorObject $thrown).kind | Should -Be 'environment'
            $thrown.Message | Should -BeLike '*the current Windows identity*the token cannot be opened*'
        }
    }

    Context 'security' {
        BeforeAll {
            $script:Folder = Join-Path $TestDrive 'exmit'
            $null = New-Item -ItemType Directory -Path $Folder
            $script:Config = Join-Path $Folder 'config.json'
            Set-Content -LiteralPath $Config -Value '{}'
            $script:Link = Join-Path $Folder 'catalog-cache.json'
            $null = New-Item -ItemType SymbolicLink -Path $Link -Target $Config
            $script:Missing = Join-Path $Folder 'journal.json'
        }

        It 'reports folder, file, link and missing, with the SDDL of the first two only' {
            Mock Get-ExmitSddl { 'O:BAD:AI(A;ID;FA;;;BA)' }
            Mock Get-ExmitSddl { $ExmitFolderSddl } -ParameterFilter { $Path -eq $Folder }
            $answer = Invoke-Op @{ op = 'security'; paths = @($Folder, $Config, $Link, $Missing) }
            $kinds = @($answer.entries | ForEach-Object { $_.kind })
            $kinds | Should -Be @('folder', 'file', 'link', 'missing')
            @($answer.entries | ForEach-Object { $_.path }) | Should -Be @($Folder, $Config, $Link, $Missing)
            $answer.entries[0].sddl | Should -Be $ExmitFolderSddl
            $answer.entries[1].sddl | Should -Be 'O:BAD:AI(A;ID;FA;;;BA)'
            $answer.entries[2].sddl | Should -BeNullOrEmpty
            $answer.entries[3].sddl | Should -BeNullOrEmpty
            Should -Invoke Get-ExmitSddl -Times 2 -Exactly
        }

        It 'keeps a single path an array in the JSON answer' {
            Mock Get-ExmitSddl { $ExmitFolderSddl }
            $json = ConvertTo-ExmitJsonLine (Invoke-Op @{ op = 'security'; paths = @($Folder) })
            $json | Should -BeLike '{"entries":`[{*}`]}'
        }

        It 'turns an unreadable ACL into an environment error naming the path' {
            Mock Get-ExmitSddl { throw 'Attempted to perform an unauthorized operation.' }
            $thrown = $null
            try { Invoke-Op @{ op = 'security'; paths = @($Config) } } catch { $thrown = $_.Exception }
            (ConvertTo-ExmitErrorObject $thrown).kind | Should -Be 'environment'
            $thrown.Message | Should -BeLike ('{0}: cannot be read on this server: Attempted to perform an unauthorized operation.' -f $Config)
        }

        It 'refuses a request without paths, or with a path that is not a string' -ForEach @(
            @{ Request = @{ op = 'security' } }
            @{ Request = @{ op = 'security'; paths = @(1) } }
            @{ Request = @{ op = 'security'; paths = @('') } }
        ) {
            $thrown = $null
            try { Invoke-Op $Request } catch { $thrown = $_.Exception }
            (ConvertTo-ExmitErrorObject $thrown).kind | Should -Be 'input'
            $thrown.Message | Should -BeLike 'security*'
        }
    }

    Context 'createSecure' {
        It 'creates a folder through New-ExmitSecureFolder with the ACL given' {
            Mock New-ExmitSecureFolder { }
            $answer = Invoke-Op @{ op = 'createSecure'; path = 'C:\ProgramData\exmit'; kind = 'folder'; sddl = 'D:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)' }
            $answer.created | Should -Be 'C:\ProgramData\exmit'
            Should -Invoke New-ExmitSecureFolder -Times 1 -Exactly -ParameterFilter { $Path -eq 'C:\ProgramData\exmit' -and $Sddl -eq 'D:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)' }
        }

        It 'creates a file with its bytes decoded from base64' {
            Mock New-ExmitSecureFile { }
            $pem = "-----BEGIN PRIVATE KEY-----`nMC4CAQAwBQYDK2VwBCIEI`n"
            $data = [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($pem))
            $null = Invoke-Op @{ op = 'createSecure'; path = 'D:\keys\feed.key'; kind = 'file'; sddl = 'D:PAI(A;;FA;;;S-1-5-21-1-2-3-1104)(A;;FA;;;SY)'; data = $data }
            Should -Invoke New-ExmitSecureFile -Times 1 -Exactly -ParameterFilter { $Path -eq 'D:\keys\feed.key' -and [System.Text.Encoding]::UTF8.GetString($Bytes) -eq $pem }
        }

        It 'refuses an ACL that is not protected from inheritance, creating nothing' {
            Mock New-ExmitSecureFolder { }
            $thrown = $null
            try { Invoke-Op @{ op = 'createSecure'; path = 'C:\ProgramData\exmit'; kind = 'folder'; sddl = 'D:AI(A;OICI;FA;;;BA)' } } catch { $thrown = $_.Exception }
            (ConvertTo-ExmitErrorObject $thrown).kind | Should -Be 'input'
            $thrown.Message | Should -BeLike '*must be protected*'
            Should -Invoke New-ExmitSecureFolder -Times 0 -Exactly
        }

        It 'turns a failed creation (the file exists) into an environment error naming the path' {
            Mock New-ExmitSecureFile { throw "The file 'D:\keys\feed.key' already exists." }
            $thrown = $null
            try { Invoke-Op @{ op = 'createSecure'; path = 'D:\keys\feed.key'; kind = 'file'; sddl = 'D:P(A;;FA;;;SY)'; data = '' } } catch { $thrown = $_.Exception }
            (ConvertTo-ExmitErrorObject $thrown).kind | Should -Be 'environment'
            $thrown.Message | Should -BeLike 'D:\keys\feed.key: cannot be created: *already exists*'
        }

        It 'refuses an unknown kind' {
            $thrown = $null
            try { Invoke-Op @{ op = 'createSecure'; path = 'C:\x'; kind = 'link'; sddl = 'D:P' } } catch { $thrown = $_.Exception }
            $thrown.Message | Should -Be 'createSecure: "kind" must be folder or file'
        }
    }

    Context 'winHttpSettings' {
        It 'returns the registry value as base64, byte for byte' {
            Mock Get-ExmitWinHttpSettings { , $WinHttpBytes }
            $answer = Invoke-Op @{ op = 'winHttpSettings' }
            [System.Convert]::FromBase64String($answer.value) | Should -Be $WinHttpBytes
        }

        It 'returns null when the value is absent' {
            Mock Get-ExmitWinHttpSettings { $null }
            (Invoke-Op @{ op = 'winHttpSettings' }).value | Should -BeNullOrEmpty
        }
    }
}
