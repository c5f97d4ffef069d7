# Starts the stdin/stdout loop unless -NoRun (Pester loads the functions only).

if (-not $NoRun) {
    try {
        Start-ExmitEngine
    } catch {
        [Console]::Error.WriteLine('exmit-engine: ' + $_.Exception.Message)
        exit 1
    }
    exit 0
}
