#!/usr/bin/env bash
# Installs what the tests need beyond npm: PowerShell 7.6.9 (a .NET tool) when no pwsh is on PATH,
# and Pester 5.7.1, both from NuGet into .tools/ (git-ignored). Safe to run again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

if ! command -v pwsh >/dev/null 2>&1 && [ ! -x "$tools/pwsh/pwsh" ]; then
  echo "install-tools: installing PowerShell 7.6.9 into .tools/pwsh"
  dotnet tool install --tool-path "$tools/pwsh" PowerShell --version 7.6.9 >/dev/null
fi

if [ ! -f "$tools/Pester/5.7.1/Pester.psd1" ]; then
  echo "install-tools: installing Pester 5.7.1 into .tools/Pester"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cat > "$work/pester.csproj" <<'XML'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>netstandard2.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="Pester" Version="[5.7.1]" /></ItemGroup>
</Project>
XML
  dotnet restore "$work/pester.csproj" --packages "$work/packages" >/dev/null
  mkdir -p "$tools/Pester"
  rm -rf "$tools/Pester/5.7.1"
  cp -r "$work/packages/pester/5.7.1/tools" "$tools/Pester/5.7.1"
fi
echo "install-tools: pwsh $(command -v pwsh || echo "$tools/pwsh/pwsh"), Pester $tools/Pester/5.7.1"
