#!/usr/bin/env bash
# Installs what the tests need beyond npm: PowerShell 7.6.9 (a .NET tool) when no pwsh is on PATH,
# and Pester 5.7.1, both from NuGet into .tools/ (git-ignored). Safe to run again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Downloads a NuGet package (name, exact version) through the .NET SDK into $work/packages;
# prints the package's folder. Fails as `dotnet restore` fails.
download_package() {
  local name="$1" version="$2"
  cat > "$work/download.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>netstandard2.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="$name" Version="[$version]" /></ItemGroup>
</Project>
XML
  dotnet restore "$work/download.csproj" --packages "$work/packages" >/dev/null 2>&1 || return 1
  echo "$work/packages/$(echo "$name" | tr '[:upper:]' '[:lower:]')/$version"
}

if ! command -v pwsh >/dev/null 2>&1 && [ ! -x "$tools/pwsh/pwsh" ]; then
  echo "install-tools: installing PowerShell 7.6.9 into .tools/pwsh"
  dotnet tool install --tool-path "$tools/pwsh" PowerShell --version 7.6.9 >/dev/null
fi
# The tool's own folder (pwsh.dll and its assemblies); empty when PowerShell is not the tool here.
app="$(ls -d "$tools"/pwsh/.store/powershell/7.6.9/powershell/7.6.9/tools/net*/any/unix 2>/dev/null | head -n 1 || true)"

# The .NET tool package ships PowerShell's assemblies as IL only, so every start JIT-compiles them
# (about 0.35 s here); PowerShell's own release packages are ReadyToRun-compiled. Compile the main
# ones ahead of time with crossgen2 (NuGet, the version of the installed .NET runtime), in place, once.
# Tests then start PowerShell as fast as an installed PowerShell does; nothing else changes. Any
# failure leaves the assemblies as they were, with a warning.
if [ -n "$app" ] && [ ! -f "$tools/pwsh/.readytorun" ] && [ "$(uname -m)" = x86_64 ]; then
  runtime="$(dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" { print $2 " " $3 }' | tail -n 1)"
  version="${runtime%% *}"
  framework="$(echo "${runtime#* }" | tr -d '[]')/$version"
  if [ -n "$version" ] && [ -d "$framework" ]; then
    echo "install-tools: compiling PowerShell's assemblies ReadyToRun (crossgen2 $version)"
    names="System.Management.Automation Microsoft.PowerShell.ConsoleHost Microsoft.PowerShell.Commands.Utility
      Microsoft.PowerShell.Commands.Management Microsoft.PowerShell.Security Microsoft.PowerShell.SDK Newtonsoft.Json pwsh"
    compiled=0
    if package="$(download_package Microsoft.NETCore.App.Crossgen2.linux-x64 "$version")"; then
      crossgen="$package/tools/crossgen2"
      chmod +x "$crossgen"
      mkdir -p "$work/r2r"
      compiled=1
      for name in $names; do
        "$crossgen" "$app/$name.dll" -o "$work/r2r/$name.dll" -r "$framework/*.dll" -r "$app/*.dll" \
          --targetos linux --targetarch x64 -O >/dev/null || { compiled=0; break; }
      done
    fi
    if [ "$compiled" = 1 ]; then
      for name in $names; do mv -f "$work/r2r/$name.dll" "$app/$name.dll"; done
      echo "crossgen2 $version" > "$tools/pwsh/.readytorun"
    else
      echo "install-tools: crossgen2 $version could not be had or failed; PowerShell stays IL-only (slower starts)" >&2
    fi
  fi
fi

# The tool's `pwsh` is a shim, itself a .NET program, that starts `dotnet pwsh.dll` as a child: two
# runtimes per start. PowerShell's own packages start pwsh.dll directly; so does this launcher (the
# shim is kept as pwsh-shim).
dotnet_path="$(command -v dotnet || true)"
if [ -n "$app" ] && [ -f "$app/pwsh.dll" ] && [ -n "$dotnet_path" ] && [ ! -f "$tools/pwsh/pwsh-shim" ]; then
  mv "$tools/pwsh/pwsh" "$tools/pwsh/pwsh-shim"
  printf '#!/bin/sh\n# Starts PowerShell directly (scripts/install-tools.sh); the .NET tool shim is pwsh-shim.\nexec "%s" "%s/pwsh.dll" "$@"\n' \
    "$dotnet_path" "$(cd "$app" && pwd)" > "$tools/pwsh/pwsh"
  chmod +x "$tools/pwsh/pwsh"
fi

if [ ! -f "$tools/Pester/5.7.1/Pester.psd1" ]; then
  echo "install-tools: installing Pester 5.7.1 into .tools/Pester"
  package="$(download_package Pester 5.7.1)"
  mkdir -p "$tools/Pester"
  rm -rf "$tools/Pester/5.7.1"
  cp -r "$package/tools" "$tools/Pester/5.7.1"
fi
echo "install-tools: pwsh $(command -v pwsh || echo "$tools/pwsh/pwsh"), Pester $tools/Pester/5.7.1"
