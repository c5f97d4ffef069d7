# Live changes: thin wrappers around services, the registry and Microsoft.Web.Administration (each one
# mocked in Pester), and the functions that read and set a resource's state through them.

#region thin wrappers (mocked in Pester)

function Get-ExmitServiceState {
    <# .SYNOPSIS The ServiceController of a service (Get-Service); $null when there is no such service. #>
    param([Parameter(Mandatory = $true)][string]$Name)
    return (Get-Service -Name $Name -ErrorAction SilentlyContinue | Select-Object -First 1)
}

function Get-ExmitServiceDelayedStart {
    <# .SYNOPSIS Whether a service has delayed automatic start (DelayedAutostart = 1 under its Services key). #>
    param([Parameter(Mandatory = $true)][string]$Name)
    $key = 'HKLM:\SYSTEM\CurrentControlSet\Services\' + $Name
    $properties = Get-ItemProperty -LiteralPath $key -Name 'DelayedAutostart' -ErrorAction SilentlyContinue
    if ($null -eq $properties) { return $false }
    return ([int]$properties.DelayedAutostart -eq 1)
}

function Stop-ExmitService {
    <# .SYNOPSIS Asks a service to stop without waiting (Stop-Service -Force -NoWait); the caller waits with a time budget. #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Name)
    if ($PSCmdlet.ShouldProcess($Name, 'stop service')) { Stop-Service -Name $Name -Force -NoWait -ErrorAction Stop }
}

function Start-ExmitService {
    <# .SYNOPSIS Asks a service to start without waiting (ServiceController.Start); the caller waits with a time budget. #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Name)
    if ($PSCmdlet.ShouldProcess($Name, 'start service')) { (Get-Service -Name $Name -ErrorAction Stop).Start() }
}

function Set-ExmitServiceStartup {
    <# .SYNOPSIS Sets a service's startup type (Set-Service -StartupType). #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Name, [Parameter(Mandatory = $true)][ValidateSet('Automatic', 'Manual', 'Disabled')][string]$StartupType)
    if ($PSCmdlet.ShouldProcess($Name, ('set startup type ' + $StartupType))) { Set-Service -Name $Name -StartupType $StartupType -ErrorAction Stop }
}

function Set-ExmitServiceDelayedStart {
    <# .SYNOPSIS Sets or clears delayed automatic start (the DelayedAutostart value under the service's key). #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Name, [Parameter(Mandatory = $true)][bool]$Enabled)
    $key = 'HKLM:\SYSTEM\CurrentControlSet\Services\' + $Name
    if ($PSCmdlet.ShouldProcess($key, ('set DelayedAutostart to ' + [int]$Enabled))) {
        Set-ItemProperty -LiteralPath $key -Name 'DelayedAutostart' -Value ([int]$Enabled) -Type DWord -ErrorAction Stop
    }
}

function Get-ExmitAppPoolState {
    <# .SYNOPSIS An application pool as {Name, State, autoStart, startMode} (the shape of apppools.xml); $null when absent or without IIS. #>
    param([Parameter(Mandatory = $true)][string]$Name)
    $manager = Get-ExmitServerManager
    if ($null -eq $manager) { return $null }
    try {
        $pool = $manager.ApplicationPools[$Name]
        if ($null -eq $pool) { return $null }
        $state = 'Unknown'
        try {
            $state = $pool.State.ToString()
        } catch {
            Write-Verbose ('app pool {0}: state unreadable: {1}' -f $Name, $_.Exception.Message)
        }
        return (New-Object PSObject -Property ([ordered]@{ Name = $pool.Name; State = $state; autoStart = [bool]$pool.AutoStart; startMode = $pool.StartMode.ToString() }))
    } finally {
        $manager.Dispose()
    }
}

function Set-ExmitAppPool {
    <# .SYNOPSIS Sets an application pool's autoStart (committed) and/or starts or stops it, through ServerManager. #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Name, [Nullable[bool]]$AutoStart, [ValidateSet('', 'Started', 'Stopped')][string]$State = '')
    if (-not $PSCmdlet.ShouldProcess($Name, 'change application pool')) { return }
    $manager = Get-ExmitServerManager
    if ($null -eq $manager) { throw 'IIS (Microsoft.Web.Administration) is not installed' }
    try {
        $pool = $manager.ApplicationPools[$Name]
        if ($null -eq $pool) { throw ('there is no application pool {0}' -f $Name) }
        if ($null -ne $AutoStart) {
            $pool.AutoStart = [bool]$AutoStart
            $manager.CommitChanges()
        }
        if ($State -eq 'Stopped') { $null = $pool.Stop() }
        if ($State -eq 'Started') { $null = $pool.Start() }
    } finally {
        $manager.Dispose()
    }
}

function Get-ExmitConfigurationSection {
    <# .SYNOPSIS The applicationHost.config section (at a location path when given) of a ServerManager. #>
    param($Manager, [string]$Section, [string]$Location)
    $config = $Manager.GetApplicationHostConfiguration()
    if ([string]::IsNullOrEmpty($Location)) { return $config.GetSection($Section) }
    return $config.GetSection($Section, $Location)
}

function Test-ExmitElementKey {
    <# .SYNOPSIS True when a configuration element's attributes equal every name/value of Key (compared as text, case-insensitively as IIS does). #>
    param($Element, $Key)
    $pairs = @()
    if ($Key -is [System.Collections.IDictionary]) {
        $pairs = @(foreach ($name in $Key.Keys) { , @([string]$name, $Key[$name]) })
    } else {
        $pairs = @(foreach ($property in $Key.PSObject.Properties) { , @($property.Name, $property.Value) })
    }
    foreach ($pair in $pairs) {
        if ([string]$Element.GetAttributeValue($pair[0]) -ne [string]$pair[1]) { return $false }
    }
    return ($pairs.Count -gt 0)
}

function ConvertFrom-ExmitConfigurationElement {
    <# .SYNOPSIS A configuration element as {name, attributes, children}: the attributes set in the file, child elements and collection items that carry any. #>
    param($Element)
    $attributes = [ordered]@{}
    foreach ($attribute in $Element.Attributes) {
        if (-not $attribute.IsInheritedFromDefaultValue) { $attributes[$attribute.Name] = $attribute.Value }
    }
    $children = New-Object System.Collections.Generic.List[object]
    foreach ($child in $Element.ChildElements) {
        $converted = ConvertFrom-ExmitConfigurationElement $child
        if ($converted.attributes.Count -gt 0 -or $converted.children.Count -gt 0) { $children.Add($converted) }
    }
    if ($null -ne $Element.Schema -and $null -ne $Element.Schema.CollectionSchema) {
        foreach ($item in $Element.GetCollection()) { $children.Add((ConvertFrom-ExmitConfigurationElement $item)) }
    }
    return [ordered]@{ name = [string]$Element.ElementTagName; attributes = $attributes; children = [object[]]$children.ToArray() }
}

function Set-ExmitConfigurationElement {
    <# .SYNOPSIS Fills a configuration element from {attributes, children}: a child named like a child element of the schema is that element, any other is a new collection item. #>
    param($Element, $Spec)
    $attributes = Get-ExmitField $Spec 'attributes'
    if ($null -ne $attributes) {
        if ($attributes -is [System.Collections.IDictionary]) {
            foreach ($name in $attributes.Keys) { $Element.SetAttributeValue([string]$name, $attributes[$name]) }
        } else {
            foreach ($property in $attributes.PSObject.Properties) { $Element.SetAttributeValue($property.Name, $property.Value) }
        }
    }
    $childNames = @(foreach ($child in $Element.ChildElements) { [string]$child.ElementTagName })
    # Assigned first: Get-ExmitField returns an array as one object, which @() would wrap again.
    $childSpecs = Get-ExmitField $Spec 'children'
    foreach ($childSpec in @($childSpecs)) {
        if ($null -eq $childSpec) { continue }
        $childName = [string](Get-ExmitField $childSpec 'name')
        if ($childNames -contains $childName) {
            Set-ExmitConfigurationElement -Element $Element.GetChildElement($childName) -Spec $childSpec
        } else {
            $collection = $Element.GetCollection()
            $item = $collection.CreateElement($childName)
            Set-ExmitConfigurationElement -Element $item -Spec $childSpec
            $null = $collection.Add($item)
        }
    }
}

function Get-ExmitIisElement {
    <# .SYNOPSIS The locally stored element of a section's collection whose attributes match Key, as {index, element}; $null when absent. #>
    param([string]$Location, [Parameter(Mandatory = $true)][string]$Section, [Parameter(Mandatory = $true)]$Key)
    $manager = Get-ExmitServerManager
    if ($null -eq $manager) { throw 'IIS (Microsoft.Web.Administration) is not installed' }
    try {
        $collection = (Get-ExmitConfigurationSection -Manager $manager -Section $Section -Location $Location).GetCollection()
        $index = 0
        foreach ($item in $collection) {
            if ((Test-ExmitElementKey -Element $item -Key $Key) -and $item.IsLocallyStored) {
                return [ordered]@{ index = $index; element = (ConvertFrom-ExmitConfigurationElement $item) }
            }
            $index++
        }
        return $null
    } finally {
        $manager.Dispose()
    }
}

function Add-ExmitIisElement {
    <# .SYNOPSIS Adds an element {name, attributes, children} to a section's collection (at Index, or at the end) and commits. #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string]$Location, [Parameter(Mandatory = $true)][string]$Section, [Parameter(Mandatory = $true)]$Element, [int]$Index = -1)
    if (-not $PSCmdlet.ShouldProcess(('{0} at {1}' -f $Section, $Location), 'add element')) { return }
    $manager = Get-ExmitServerManager
    if ($null -eq $manager) { throw 'IIS (Microsoft.Web.Administration) is not installed' }
    try {
        $collection = (Get-ExmitConfigurationSection -Manager $manager -Section $Section -Location $Location).GetCollection()
        $item = $collection.CreateElement([string](Get-ExmitField $Element 'name'))
        Set-ExmitConfigurationElement -Element $item -Spec $Element
        if ($Index -ge 0 -and $Index -lt $collection.Count) {
            $null = $collection.AddAt($Index, $item)
        } else {
            $null = $collection.Add($item)
        }
        $manager.CommitChanges()
    } finally {
        $manager.Dispose()
    }
}

function Remove-ExmitIisElement {
    <# .SYNOPSIS Removes the locally stored element whose attributes match Key from a section's collection and commits; false when there is none. #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string]$Location, [Parameter(Mandatory = $true)][string]$Section, [Parameter(Mandatory = $true)]$Key)
    if (-not $PSCmdlet.ShouldProcess(('{0} at {1}' -f $Section, $Location), 'remove element')) { return $false }
    $manager = Get-ExmitServerManager
    if ($null -eq $manager) { throw 'IIS (Microsoft.Web.Administration) is not installed' }
    try {
        $collection = (Get-ExmitConfigurationSection -Manager $manager -Section $Section -Location $Location).GetCollection()
        $found = $null
        foreach ($item in $collection) {
            if ((Test-ExmitElementKey -Element $item -Key $Key) -and $item.IsLocallyStored) { $found = $item; break }
        }
        if ($null -eq $found) { return $false }
        $collection.Remove($found)
        $manager.CommitChanges()
        return $true
    } finally {
        $manager.Dispose()
    }
}

function Get-ExmitGlobalModule {
    <# .SYNOPSIS A global module (system.webServer/globalModules) as {name, image, index}; $null when absent. #>
    param([Parameter(Mandatory = $true)][string]$Name)
    $manager = Get-ExmitServerManager
    if ($null -eq $manager) { throw 'IIS (Microsoft.Web.Administration) is not installed' }
    try {
        $index = 0
        foreach ($item in (Get-ExmitConfigurationSection -Manager $manager -Section 'system.webServer/globalModules').GetCollection()) {
            if ([string]$item.GetAttributeValue('name') -eq $Name) {
                return [ordered]@{ name = [string]$item.GetAttributeValue('name'); image = [string]$item.GetAttributeValue('image'); index = $index }
            }
            $index++
        }
        return $null
    } finally {
        $manager.Dispose()
    }
}

function Add-ExmitGlobalModule {
    <# .SYNOPSIS Adds a global module {name, image} (at Index, or at the end) and commits. #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Name, [Parameter(Mandatory = $true)][string]$Image, [int]$Index = -1)
    if (-not $PSCmdlet.ShouldProcess($Name, 'add global module')) { return }
    $element = [ordered]@{ name = 'add'; attributes = [ordered]@{ name = $Name; image = $Image }; children = @() }
    Add-ExmitIisElement -Location '' -Section 'system.webServer/globalModules' -Element $element -Index $Index
}

function Remove-ExmitGlobalModule {
    <# .SYNOPSIS Removes a global module by name and commits; false when there is none. #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Name)
    if (-not $PSCmdlet.ShouldProcess($Name, 'remove global module')) { return $false }
    return (Remove-ExmitIisElement -Location '' -Section 'system.webServer/globalModules' -Key ([ordered]@{ name = $Name }))
}

function Get-ExmitApplicationHostHash {
    <# .SYNOPSIS The sha256 of this server's applicationHost.config; $null when it does not exist. #>
    $windows = $env:windir
    if (-not $windows) { $windows = 'C:\Windows' }
    $bytes = Get-ExmitFileBytes -Path (Get-ExmitApplicationHostPath $windows.TrimEnd('\'))
    if ($null -eq $bytes) { return $null }
    return (Get-ExmitSha256Hex -Bytes $bytes)
}

function Wait-ExmitInterval {
    <# .SYNOPSIS Sleeps between two polls of a state that is changing. #>
    param([int]$Milliseconds)
    Start-Sleep -Milliseconds $Milliseconds
}

#endregion

#region states read and set through the wrappers

function Get-ExmitServiceSnapshot {
    <# .SYNOPSIS A service's state as {status, startType, delayedStart}; $null when there is no such service. #>
    param([Parameter(Mandatory = $true)][string]$Name)
    $service = Get-ExmitServiceState -Name $Name
    if ($null -eq $service) { return $null }
    return [ordered]@{
        status       = (ConvertTo-ExmitEnumName -Value (Get-ExmitMember $service 'Status') -Map $script:ExmitServiceStatusMap)
        startType    = (ConvertTo-ExmitEnumName -Value (Get-ExmitMember $service 'StartType') -Map $script:ExmitServiceStartMap)
        delayedStart = [bool](Get-ExmitServiceDelayedStart -Name $Name)
    }
}

function Get-ExmitAppPoolSnapshot {
    <# .SYNOPSIS An application pool's state as {state, autoStart}; $null when there is no such pool. #>
    param([Parameter(Mandatory = $true)][string]$Name)
    $pool = Get-ExmitAppPoolState -Name $Name
    if ($null -eq $pool) { return $null }
    return [ordered]@{
        state     = (ConvertTo-ExmitEnumName -Value (Get-ExmitMember $pool 'State') -Map $script:ExmitAppPoolStateMap)
        autoStart = (ConvertTo-ExmitBoolean (Get-ExmitMember $pool 'autoStart'))
    }
}

function Compare-ExmitState {
    <# .SYNOPSIS The differences between a state and the wanted values (only the names Wanted has), as "name is X, expected Y" texts; empty when equal. #>
    param($Current, $Wanted)
    $differences = New-Object System.Collections.Generic.List[string]
    if ($null -eq $Wanted) { return , $differences.ToArray() }
    $names = @()
    if ($Wanted -is [System.Collections.IDictionary]) { $names = @($Wanted.Keys) } else { $names = @($Wanted.PSObject.Properties | ForEach-Object { $_.Name }) }
    foreach ($name in $names) {
        $want = Get-ExmitField $Wanted $name
        $have = Get-ExmitField $Current $name
        if ($want -is [bool] -or $have -is [bool]) {
            if ([string]$want -ne [string]$have) { $differences.Add(('{0} is {1}, expected {2}' -f $name, $have, $want)) }
        } elseif ([string]$want -cne [string]$have) {
            $differences.Add(('{0} is {1}, expected {2}' -f $name, $have, $want))
        }
    }
    return , $differences.ToArray()
}

function Wait-ExmitState {
    <# .SYNOPSIS Polls a service's status or an app pool's state until it equals Value, with progress events; a step error after BudgetSeconds. #>
    param([ValidateSet('service', 'appPool')][string]$Kind, [string]$Name, [string]$Value, [int]$BudgetSeconds)
    $what = ('service ' + $Name)
    if ($Kind -eq 'appPool') { $what = ('application pool ' + $Name) }
    $started = [System.Diagnostics.Stopwatch]::StartNew()
    $lastEvent = 0
    while ($true) {
        if ($Kind -eq 'service') {
            $current = Get-ExmitServiceSnapshot -Name $Name
            if ($null -ne $current -and $current.status -ceq $Value) { return }
        } else {
            $current = Get-ExmitAppPoolSnapshot -Name $Name
            if ($null -ne $current -and $current.state -ceq $Value) { return }
        }
        $elapsed = [int]$started.Elapsed.TotalSeconds
        if ($elapsed -ge $BudgetSeconds) {
            throw (New-ExmitApplyError -Kind step -Message ('{0} did not become {1} within {2} s' -f $what, $Value, $BudgetSeconds))
        }
        if ($elapsed - $lastEvent -ge 5) {
            $lastEvent = $elapsed
            Write-ExmitEvent -Message ('waiting for {0} to become {1} ({2} s)' -f $what, $Value, $elapsed)
        }
        Wait-ExmitInterval -Milliseconds 500
    }
}

function Set-ExmitServiceState {
    <# .SYNOPSIS Brings a service to To {startType?, delayedStart?, status?}: startup first, then Stopped/Running within a time budget. #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Name, [Parameter(Mandatory = $true)]$To, [int]$BudgetSeconds = 120)
    $startType = Get-ExmitField $To 'startType'
    $delayedStart = Get-ExmitField $To 'delayedStart'
    $status = Get-ExmitField $To 'status'
    if (-not $PSCmdlet.ShouldProcess(('service ' + $Name), ('set status {0}, startup type {1}, delayed start {2}' -f $status, $startType, $delayedStart))) { return }
    $current = Get-ExmitServiceSnapshot -Name $Name
    if ($null -eq $current) { throw (New-ExmitApplyError -Kind step -Message ('there is no service {0}' -f $Name)) }
    if ($null -ne $startType -and [string]$startType -cne $current.startType) {
        Set-ExmitServiceStartup -Name $Name -StartupType ([string]$startType)
    }
    if ($null -ne $delayedStart -and [bool]$delayedStart -ne $current.delayedStart) {
        Set-ExmitServiceDelayedStart -Name $Name -Enabled ([bool]$delayedStart)
    }
    if ($status -ceq 'Stopped' -and $current.status -cne 'Stopped') {
        Stop-ExmitService -Name $Name
        Wait-ExmitState -Kind service -Name $Name -Value 'Stopped' -BudgetSeconds $BudgetSeconds
    } elseif ($status -ceq 'Running' -and $current.status -cne 'Running') {
        Start-ExmitService -Name $Name
        Wait-ExmitState -Kind service -Name $Name -Value 'Running' -BudgetSeconds $BudgetSeconds
    }
}

function Set-ExmitAppPoolState {
    <# .SYNOPSIS Brings an application pool to To {autoStart?, state?}: autoStart first, then Stopped/Started within a time budget. #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$Name, [Parameter(Mandatory = $true)]$To, [int]$BudgetSeconds = 120)
    $autoStart = Get-ExmitField $To 'autoStart'
    $state = Get-ExmitField $To 'state'
    if (-not $PSCmdlet.ShouldProcess(('application pool ' + $Name), ('set state {0}, autoStart {1}' -f $state, $autoStart))) { return }
    $current = Get-ExmitAppPoolSnapshot -Name $Name
    if ($null -eq $current) { throw (New-ExmitApplyError -Kind step -Message ('there is no application pool {0}' -f $Name)) }
    if ($null -ne $autoStart -and [bool]$autoStart -ne [bool]$current.autoStart) {
        Set-ExmitAppPool -Name $Name -AutoStart ([bool]$autoStart)
    }
    if ($state -ceq 'Stopped' -and $current.state -cne 'Stopped') {
        Set-ExmitAppPool -Name $Name -State Stopped
        Wait-ExmitState -Kind appPool -Name $Name -Value 'Stopped' -BudgetSeconds $BudgetSeconds
    } elseif ($state -ceq 'Started' -and $current.state -cne 'Started') {
        Set-ExmitAppPool -Name $Name -State Started
        Wait-ExmitState -Kind appPool -Name $Name -Value 'Started' -BudgetSeconds $BudgetSeconds
    }
}

#endregion
