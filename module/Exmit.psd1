# Module manifest of Exmit: exmit's commands as PowerShell cmdlets (Windows PowerShell 5.1 and PowerShell 7).
@{
    RootModule           = 'Exmit.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0f7a4e-2f1c-4d55-9a53-6e2f0c8b7d41'
    Author               = 'exmit contributors'
    Copyright            = '(c) exmit contributors. MIT License.'
    Description          = 'Emergency mitigations for on-premises Microsoft Exchange servers: detect, audit, apply and roll back. Runs exmit.exe and returns objects.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FunctionsToExport    = @('Get-ExmitServer', 'Get-ExmitAudit', 'Invoke-ExmitMitigation', 'Undo-ExmitMitigation', 'Get-ExmitStatus')
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('Exchange', 'Security', 'Mitigation', 'EEMS', 'EOMT')
            LicenseUri = 'https://opensource.org/licenses/MIT'
        }
    }
}
