# Small helpers: JSON fields, dictionaries, the platform, text decoding (CliXml) and file data (base64 + SHA-256).

function Get-ExmitField {
    <# .SYNOPSIS A property of a parsed JSON object, or $null when absent (StrictMode-safe). #>
    param($Object, [string]$Name)
    if ($null -eq $Object) { return $null }
    # The comma keeps an empty or one-element JSON array an array for the caller.
    if ($Object -is [System.Collections.IDictionary]) {
        if ($Object.Contains($Name)) { return , $Object[$Name] }
        return $null
    }
    $property = $Object.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    return , $property.Value
}

function New-ExmitDictionary {
    <# .SYNOPSIS An ordered dictionary whose keys are unique regardless of case. #>
    return , [System.Collections.Specialized.OrderedDictionary]::new([System.StringComparer]::OrdinalIgnoreCase)
}

function Test-ExmitWindows {
    <# .SYNOPSIS True on Windows (Windows PowerShell 5.1 has no $IsWindows). #>
    return ([System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Win32NT)
}

function ConvertFrom-ExmitTextBytes {
    <#
    .SYNOPSIS Decodes a file's bytes: UTF-16LE/BE or UTF-8 by BOM (removed), else UTF-8.
    .PARAMETER Strict Throw on bytes that are not valid in the encoding (CliXml).
    #>
    param([byte[]]$Bytes, [switch]$Strict)
    if ($null -eq $Bytes) { return $null }
    $length = $Bytes.Length
    if ($length -ge 2 -and $Bytes[0] -eq 0xFF -and $Bytes[1] -eq 0xFE) {
        $encoding = New-Object System.Text.UnicodeEncoding $false, $false, ([bool]$Strict)
        return $encoding.GetString($Bytes, 2, $length - 2)
    }
    if ($length -ge 2 -and $Bytes[0] -eq 0xFE -and $Bytes[1] -eq 0xFF) {
        $encoding = New-Object System.Text.UnicodeEncoding $true, $false, ([bool]$Strict)
        return $encoding.GetString($Bytes, 2, $length - 2)
    }
    $utf8 = New-Object System.Text.UTF8Encoding $false, ([bool]$Strict)
    if ($length -ge 3 -and $Bytes[0] -eq 0xEF -and $Bytes[1] -eq 0xBB -and $Bytes[2] -eq 0xBF) {
        return $utf8.GetString($Bytes, 3, $length - 3)
    }
    # UTF-16LE without a BOM: '<' followed by a zero byte.
    if ($length -ge 4 -and $Bytes[0] -eq 0x3C -and $Bytes[1] -eq 0x00 -and $Bytes[2] -ne 0x00 -and $Bytes[3] -eq 0x00) {
        $encoding = New-Object System.Text.UnicodeEncoding $false, $false, ([bool]$Strict)
        return $encoding.GetString($Bytes)
    }
    return $utf8.GetString($Bytes)
}

function ConvertTo-ExmitString {
    <# .SYNOPSIS A scalar as a string: CliXml objects by their typed value, else their text. #>
    param($Value)
    if ($null -eq $Value) { return $null }
    if ($Value -is [System.Management.Automation.PSObject]) { $Value = $Value.PSObject.BaseObject }
    if (Test-ExmitCliObject $Value) {
        if ($null -ne $Value.Value) { return [string]$Value.Value }
        return $Value.Text
    }
    if ($Value -is [string]) { return $Value }
    return [string]$Value
}

function ConvertTo-ExmitFileData {
    <#
    .SYNOPSIS A file's bytes as the protocol carries them: @{ data = base64; sha256 = lowercase hex },
    both $null when there is no file. No decoding, no BOM stripping: the bytes as they are on disk.
    #>
    param([byte[]]$Bytes)
    if ($null -eq $Bytes) { return @{ data = $null; sha256 = $null } }
    $algorithm = [System.Security.Cryptography.SHA256]::Create()
    try {
        $hash = $algorithm.ComputeHash($Bytes)
    } finally {
        $algorithm.Dispose()
    }
    $hex = [System.BitConverter]::ToString($hash).Replace('-', '').ToLowerInvariant()
    return @{ data = [System.Convert]::ToBase64String($Bytes); sha256 = $hex }
}
