; Inno Setup script: a per-user Windows installer around the one-folder bundle.
;   iscc /DAppVersion=0.1.0 /DSourceDir=..\..\dist\clipdesk /DOutputDir=..\..\dist packaging\windows\clipdesk.iss
; Built by .github/workflows/build.yml on a Windows runner; not verifiable on the project's Linux machines.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\clipdesk"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
AppId={{6B0E3C1A-4C3E-4F6B-9E36-0C1D2A7C5D11}
AppName=clipdesk
AppVersion={#AppVersion}
AppPublisher=clipdesk
DefaultDirName={localappdata}\Programs\clipdesk
DefaultGroupName=clipdesk
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=clipdesk-{#AppVersion}-windows-x86_64-setup
Compression=lzma2/max
SolidCompression=yes
UninstallDisplayIcon={app}\clipdesk-gui.exe
WizardStyle=modern

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Icons]
Name: "{autoprograms}\clipdesk"; Filename: "{app}\clipdesk-gui.exe"
Name: "{autodesktop}\clipdesk"; Filename: "{app}\clipdesk-gui.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked

[Run]
Filename: "{app}\clipdesk-gui.exe"; Description: "Start clipdesk"; Flags: nowait postinstall skipifsilent
