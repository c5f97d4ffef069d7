# Windows paths and the image's fs/ tree: X:\a\b maps to IMAGE/fs/X/a/b, never outside the image.

function Split-ExmitWindowsPath {
    <#
    .SYNOPSIS Splits an absolute Windows path (X:\a\b) into the drive letter and its segments.
    .DESCRIPTION Refuses (input error) non-drive paths, '..' or dots-only segments, stream and
    wildcard characters. '.' and empty segments are dropped, trailing dots and spaces removed (as Windows does).
    #>
    param([string]$Path)
    if ([string]::IsNullOrEmpty($Path)) {
        throw (New-ExmitError -Kind input -Message 'a path is empty')
    }
    if ($Path -notmatch '^([A-Za-z]):[\\/]') {
        throw (New-ExmitError -Kind input -Message ('not an absolute Windows path with a drive letter: {0}' -f $Path))
    }
    $drive = $Path.Substring(0, 1).ToUpperInvariant()
    $segments = New-Object System.Collections.Generic.List[string]
    $segments.Add($drive)
    foreach ($raw in $Path.Substring(3).Split([char[]]@('\', '/'))) {
        if ($raw.Length -eq 0 -or $raw -eq '.') { continue }
        if ($raw -match '^\.{2,}$' -or $raw.Trim().Trim('.').Length -eq 0) {
            throw (New-ExmitError -Kind input -Message ('a path with a ".." segment is refused: {0}' -f $Path))
        }
        if ($raw -match '[:*?"<>|\x00-\x1f]') {
            throw (New-ExmitError -Kind input -Message ('a path with a character Windows does not allow in names is refused: {0}' -f $Path))
        }
        $segments.Add($raw.TrimEnd('. '.ToCharArray()))
    }
    if ($segments.Count -gt $script:ExmitLimits.PathSegments) {
        throw (New-ExmitError -Kind input -Message ('a path with more than {0} segments is refused: {1}' -f $script:ExmitLimits.PathSegments, $Path))
    }
    return , $segments.ToArray()
}

function Test-ExmitPathInside {
    <# .SYNOPSIS True when FullPath is Root or below it. #>
    param([string]$FullPath, [string]$Root)
    $comparison = [System.StringComparison]::Ordinal
    if (Test-ExmitWindows) { $comparison = [System.StringComparison]::OrdinalIgnoreCase }
    $rootWithSeparator = $Root.TrimEnd([char[]]@('\', '/')) + [System.IO.Path]::DirectorySeparatorChar
    if ([string]::Equals($FullPath.TrimEnd([char[]]@('\', '/')), $Root.TrimEnd([char[]]@('\', '/')), $comparison)) { return $true }
    return $FullPath.StartsWith($rootWithSeparator, $comparison)
}

function Find-ExmitDirectoryEntries {
    <# .SYNOPSIS The entries of Directory named Name, compared case-insensitively: an exact match first, then ordinal order. #>
    param([string]$Directory, [string]$Name)
    $directoryInfo = New-Object System.IO.DirectoryInfo $Directory
    if (-not $directoryInfo.Exists) { return , @() }
    $exact = @()
    $others = @()
    foreach ($entry in $directoryInfo.GetFileSystemInfos()) {
        if ([string]::Equals($entry.Name, $Name, [System.StringComparison]::Ordinal)) { $exact += $entry }
        elseif ([string]::Equals($entry.Name, $Name, [System.StringComparison]::OrdinalIgnoreCase)) { $others += $entry }
    }
    # Case variants only exist on a case-sensitive file system, and rarely: sort only when there are some.
    if ($others.Count -gt 1) { $others = @($others | Sort-Object -Property Name -CaseSensitive) }
    return , @($exact + $others)
}

function Find-ExmitDirectoryEntry {
    <# .SYNOPSIS The entry of Directory named Name, compared case-insensitively (an exact match wins). #>
    param([string]$Directory, [string]$Name)
    $entries = Find-ExmitDirectoryEntries -Directory $Directory -Name $Name
    if ($entries.Count -eq 0) { return $null }
    return $entries[0]
}

# IO_REPARSE_TAG_SYMLINK (0xA000000C) and IO_REPARSE_TAG_MOUNT_POINT (0xA0000003, junctions); other tags with the name-surrogate
# bit (0x20000000) also stand for another entry. Any other tag (deduplication, cloud placeholders, WOF
# compression) marks a file whose data Windows hands out as usual.
$script:ExmitLinkReparseTags = @(2684354572, 2684354563)
$script:ExmitReparseTagSource = @'
using System;
using System.Runtime.InteropServices;
namespace Exmit {
    public static class ReparseTag {
        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        private struct FindData {
            public uint Attributes;
            public System.Runtime.InteropServices.ComTypes.FILETIME Created;
            public System.Runtime.InteropServices.ComTypes.FILETIME Accessed;
            public System.Runtime.InteropServices.ComTypes.FILETIME Written;
            public uint SizeHigh;
            public uint SizeLow;
            public uint Reserved0;
            public uint Reserved1;
            [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 260)] public string FileName;
            [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 14)] public string AlternateFileName;
        }
        [DllImport("kernel32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern IntPtr FindFirstFileW(string fileName, out FindData data);
        [DllImport("kernel32.dll")]
        private static extern bool FindClose(IntPtr handle);
        // The reparse tag of an entry (FindFirstFile's dwReserved0), 0 when it is no reparse point, -1 when unreadable.
        public static long Get(string path) {
            FindData data;
            IntPtr handle = FindFirstFileW(path, out data);
            if (handle == new IntPtr(-1)) { return -1; }
            FindClose(handle);
            if ((data.Attributes & 0x400) == 0) { return 0; }
            return data.Reserved0;
        }
    }
}
'@

function Get-ExmitReparseTag {
    <# .SYNOPSIS The reparse tag of an entry on Windows (0 for none, -1 when unreadable); $null elsewhere (thin wrapper, mocked in Pester). #>
    param([string]$Path)
    if (-not (Test-ExmitWindows)) { return $null }
    if (-not ('Exmit.ReparseTag' -as [type])) { Add-Type -TypeDefinition $script:ExmitReparseTagSource }
    return [long][Exmit.ReparseTag]::Get($Path)
}

function Get-ExmitReparseKind {
    <#
    .SYNOPSIS What an entry is: 'none' (no reparse point), 'link' (a symbolic link, junction or other
    name surrogate, never read through blindly) or 'file' (a reparse point that is not a link, such as a
    deduplicated, cloud placeholder or compressed file: read as the file it is).
    .DESCRIPTION Decided by the reparse tag on Windows; elsewhere by .NET's LinkTarget.
    #>
    param([System.IO.FileSystemInfo]$Entry)
    if (($Entry.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -eq 0) { return 'none' }
    $tag = Get-ExmitReparseTag -Path $Entry.FullName
    if ($null -ne $tag) {
        $tag = [long]$tag
        if ($tag -le 0) { return 'link' }
        if ($script:ExmitLinkReparseTags -contains $tag) { return 'link' }
        if (($tag -band 0x20000000) -ne 0) { return 'link' }
        return 'file'
    }
    if ($null -eq $Entry.PSObject.Properties['LinkTarget']) { return 'link' }
    if ($null -ne $Entry.LinkTarget) { return 'link' }
    return 'file'
}

function Resolve-ExmitImageLink {
    <# .SYNOPSIS The final target of a link inside the image; refused when it leaves the image or cannot be resolved safely. #>
    param([System.IO.FileSystemInfo]$Entry, [string]$Root, [string]$WindowsPath)
    $method = $Entry.GetType().GetMethod('ResolveLinkTarget', [type[]]@([bool]))
    if ($null -eq $method) {
        throw (New-ExmitError -Kind image -Message ('{0} is a link in the image, which this PowerShell cannot resolve safely: refused' -f $WindowsPath))
    }
    $target = $Entry.ResolveLinkTarget($true)
    if ($null -eq $target) { return $null }
    $full = [System.IO.Path]::GetFullPath($target.FullName)
    if (-not (Test-ExmitPathInside -FullPath $full -Root $Root)) {
        throw (New-ExmitError -Kind image -Message ('{0} resolves outside the image: refused' -f $WindowsPath))
    }
    return $full
}

function Resolve-ExmitImagePath {
    <#
    .SYNOPSIS Maps a Windows path X:\a\b to IMAGE/fs/X/a/b, each segment resolved case-insensitively.
    .DESCRIPTION Returns the file's full path, or $null when there is no such file. Never leaves the image:
    '..' is refused and links are followed only while they stay inside it.
    #>
    param([string]$ImageRoot, [string]$WindowsPath)
    $segments = Split-ExmitWindowsPath $WindowsPath
    $root = [System.IO.Path]::GetFullPath($ImageRoot)
    $rootEntry = New-Object System.IO.DirectoryInfo $root
    if (($rootEntry.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) {
        $resolvedRoot = $rootEntry.GetType().GetMethod('ResolveLinkTarget', [type[]]@([bool]))
        if ($null -ne $resolvedRoot) {
            $linkTarget = $rootEntry.ResolveLinkTarget($true)
            if ($null -ne $linkTarget) { $root = [System.IO.Path]::GetFullPath($linkTarget.FullName) }
        }
    }
    # 'fs' goes through the same checks as the path's own segments (it could be a link too).
    $segments = @('fs') + @($segments)
    $state = @{ Visited = 0 }
    return (Find-ExmitImageSegment -Directory $root -Segments $segments -Index 0 -Root $root -WindowsPath $WindowsPath -State $state)
}

function Find-ExmitImageSegment {
    <#
    .SYNOPSIS Resolves Segments[Index..] below Directory. On a case-sensitive file system an image can
    hold C/ and c/ side by side, which Windows would see as one folder: every candidate is tried.
    #>
    param([string]$Directory, [string[]]$Segments, [int]$Index, [string]$Root, [string]$WindowsPath, [hashtable]$State)
    $isLast = ($Index -eq $Segments.Count - 1)
    foreach ($entry in (Find-ExmitDirectoryEntries -Directory $Directory -Name $Segments[$Index])) {
        $State.Visited++
        if ($State.Visited -gt 1000) {
            throw (New-ExmitError -Kind image -Message ('{0}: too many case variants of its folders in the image' -f $WindowsPath))
        }
        $entryPath = $entry.FullName
        if ((Get-ExmitReparseKind $entry) -eq 'link') {
            $entryPath = Resolve-ExmitImageLink -Entry $entry -Root $Root -WindowsPath $WindowsPath
            if ($null -eq $entryPath) { continue }
        }
        if (-not (Test-ExmitPathInside -FullPath $entryPath -Root $Root)) {
            throw (New-ExmitError -Kind image -Message ('{0} resolves outside the image: refused' -f $WindowsPath))
        }
        if ($isLast) {
            if ([System.IO.File]::Exists($entryPath)) { return $entryPath }
            continue
        }
        if (-not [System.IO.Directory]::Exists($entryPath)) { continue }
        $found = Find-ExmitImageSegment -Directory $entryPath -Segments $Segments -Index ($Index + 1) -Root $Root -WindowsPath $WindowsPath -State $State
        if ($null -ne $found) { return $found }
    }
    return $null
}

function Read-ExmitImageFileBytes {
    <# .SYNOPSIS A file's bytes as they are, refusing files over the size limit; $null when absent. #>
    param([string]$Path, [string]$DisplayName, [long]$MaxBytes = $script:ExmitLimits.FileBytes, [string]$Kind = 'image')
    # The comma hands the byte array over whole: returned bare, PowerShell would send it down the pipeline
    # byte by byte (slow, and an empty file would come back as nothing).
    return , (Read-ExmitFileBytes -Path $Path -MaxBytes $MaxBytes -DisplayName $DisplayName -Kind $Kind)
}
