#!/bin/sh
# Linux AppImage from the one-folder bundle: packaging/linux/make_appimage.sh [dist/clipdesk] [OUT_DIR]
#
# Lays out dist/appimage/clipdesk.AppDir (AppRun, .desktop, icon, the bundle under usr/lib/clipdesk) and
# packs it with appimagetool ($APPIMAGETOOL, or appimagetool on PATH). appimagetool and the AppImage
# runtime come only from the AppImage project's GitHub releases (not Debian, not PyPI), so this runs in
# CI (.github/workflows/build.yml), not on the project's own machines; there, with no appimagetool, it
# stops after the AppDir (whose AppRun can be tried directly) and exits 3.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bundle=${1:-$root/dist/clipdesk}
out=${2:-$root/dist}
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$root/clipdesk/__init__.py")
arch=$(uname -m)
appdir="$out/appimage/clipdesk.AppDir"
[ -x "$bundle/clipdesk" ] || { echo "make_appimage: no bundle at $bundle (run make dist first)" >&2; exit 1; }

rm -rf "$appdir"
mkdir -p "$appdir/usr/lib" "$appdir/usr/share/applications" "$appdir/usr/share/icons/hicolor/512x512/apps"
cp -a "$bundle" "$appdir/usr/lib/clipdesk"
rm -f "$appdir/usr/lib/clipdesk/install-desktop-entry.sh"  # AppImage integration tools do this job
cat > "$appdir/AppRun" <<'APPRUN'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
exec "$here/usr/lib/clipdesk/clipdesk" "$@"
APPRUN
chmod 755 "$appdir/AppRun"
cp "$root/packaging/linux/clipdesk.desktop" "$appdir/clipdesk.desktop"
cp "$root/packaging/linux/clipdesk.desktop" "$appdir/usr/share/applications/clipdesk.desktop"
if [ -f "$bundle/clipdesk.png" ]; then
    cp "$bundle/clipdesk.png" "$appdir/clipdesk.png"
    cp "$bundle/clipdesk.png" "$appdir/usr/share/icons/hicolor/512x512/apps/clipdesk.png"
    ln -sf clipdesk.png "$appdir/.DirIcon"
fi

tool=${APPIMAGETOOL:-$(command -v appimagetool || true)}
if [ -z "$tool" ]; then
    echo "make_appimage: AppDir ready at $appdir; no appimagetool here (set APPIMAGETOOL), so no AppImage" >&2
    exit 3
fi
target="$out/clipdesk-$version-$arch.AppImage"
ARCH=$arch "$tool" --no-appstream "$appdir" "$target"
echo "make_appimage: $target ($(du -h "$target" | cut -f1))"
