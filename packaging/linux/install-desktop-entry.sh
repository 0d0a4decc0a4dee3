#!/bin/sh
# Adds clipdesk to your desktop's application menu (this user only) and `clipdesk` to ~/.local/bin,
# pointing at this unpacked folder. Run it again after moving the folder; --remove undoes it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data="${XDG_DATA_HOME:-$HOME/.local/share}"
entry="$data/applications/clipdesk.desktop"
icon="$data/icons/hicolor/512x512/apps/clipdesk.png"
link="$HOME/.local/bin/clipdesk"
if [ "${1:-}" = "--remove" ]; then
    rm -f "$entry" "$icon"
    [ -L "$link" ] && rm -f "$link"
    echo "removed clipdesk's menu entry"
    exit 0
fi
mkdir -p "$(dirname "$entry")" "$(dirname "$icon")" "$(dirname "$link")"
sed -e "s|^Exec=clipdesk|Exec=\"$here/clipdesk\"|" -e "s|^Icon=clipdesk|Icon=$icon|" \
    "$here/clipdesk.desktop" > "$entry"
[ -f "$here/clipdesk.png" ] && cp "$here/clipdesk.png" "$icon"
ln -sfn "$here/clipdesk" "$link"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
echo "clipdesk is in your application menu; \`clipdesk\` runs it from a terminal ($link)"
