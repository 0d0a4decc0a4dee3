"""`clipdesk info`: version, where clipdesk keeps its data, counts."""

from __future__ import annotations

from clipdesk import __version__, paths
from clipdesk.commands.common import print_json


def cmd_info(args) -> int:
    from clipdesk.runtime.registry import default_model_name, model_entries
    from clipdesk.runtime.video_frames import video_reader

    info = {
        "version": __version__,
        "data_dir": str(paths.data_dir()),
        "database": str(paths.database_path()),
        "models_dir": str(paths.models_dir()),
        "bundled_models_dir": str(paths.bundled_models_dir()),
        "cache_dir": str(paths.cache_dir()),
        "settings": str(paths.settings_path()),
        "models": len(model_entries()),
        "default_model": default_model_name(),
        "video_reader": video_reader(),
    }
    if paths.database_path().is_file():
        from clipdesk.commands.index import damaged_vector_records
        from clipdesk.library.store import Library

        with Library() as library:
            counts = library.counts()
            info.update(photos=counts["photos"], videos=counts["videos"], problems=counts["problems"],
                        damaged_vectors=len(damaged_vector_records(library)))
    if args.json:
        print_json(info)
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def register(commands) -> None:
    info = commands.add_parser("info", help="version, where clipdesk keeps its data, counts")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=cmd_info)
