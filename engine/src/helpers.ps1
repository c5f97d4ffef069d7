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

function Get-ExmitFirst {
    <# .SYNOPSIS The first of a list of values, or $null for an empty list or $null (no pipeline: cheaper at start). #>
    param($Values)
    $list = @($Values)
    if ($list.Count -eq 0) { return $null }
    return , $list[0]
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
    # A CliXml object is itself a PSObject: test for it before unwrapping (its base object is a bare PSCustomObject).
    if (Test-ExmitCliObject $Value) {
        if ($null -ne $Value.Value) { return [string]$Value.Value }
        return $Value.Text
    }
    if ($Value -is [System.Management.Automation.PSObject]) { $Value = $Value.PSObject.BaseObject }
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

function Read-ExmitFileBytes {
    <#
    .SYNOPSIS A file's bytes, opened with FileShare ReadWrite and Delete so that a file another program
    holds open for writing (appcmd, IIS Manager, EEMS) is still readable; $null when there is no file.
    .DESCRIPTION The only place the engine reads a file's content. A file over MaxBytes (or one that
    grows past it while being read) is refused with an error of Kind naming DisplayName.
    #>
    param([string]$Path, [long]$MaxBytes, [string]$DisplayName = $Path, [string]$Kind = 'image')
    $info = New-Object System.IO.FileInfo $Path
    if (-not $info.Exists) { return $null }
    $tooLarge = '{0}: larger than the limit of {1} bytes ({2} bytes)'
    if ($info.Length -gt $MaxBytes) {
        throw (New-ExmitError -Kind $Kind -File $DisplayName -Message ($tooLarge -f $DisplayName, $MaxBytes, $info.Length))
    }
    $share = [System.IO.FileShare]::ReadWrite -bor [System.IO.FileShare]::Delete
    $stream = [System.IO.FileStream]::new($info.FullName, [System.IO.FileMode]::Open, [System.IO.FileAccess]::Read, $share)
    try {
        $length = $stream.Length
        if ($length -gt $MaxBytes) {
            throw (New-ExmitError -Kind $Kind -File $DisplayName -Message ($tooLarge -f $DisplayName, $MaxBytes, $length))
        }
        # A writer may change the length while we read: read to the end, never past MaxBytes.
        $buffer = New-Object System.IO.MemoryStream
        $chunk = New-Object byte[] 65536
        while ($true) {
            $count = $stream.Read($chunk, 0, $chunk.Length)
            if ($count -le 0) { break }
            if ($buffer.Length + $count -gt $MaxBytes) {
                throw (New-ExmitError -Kind $Kind -File $DisplayName -Message ($tooLarge -f $DisplayName, $MaxBytes, ($buffer.Length + $count)))
            }
            $buffer.Write($chunk, 0, $count)
        }
        return , $buffer.ToArray()
    } finally {
        $stream.Dispose()
    }
}
