"""Where a service's time went, from a profile of bench/campaign.py --profile:

    uv run python bench/hotspots.py DIR/1-mailer.txt [--top 30]

Each function's share of the samples: inclusive (it or what it called was running) and
self (it was). Lines are dropped from frame names, so a function counts once."""

import argparse
import re
from collections import Counter
from pathlib import Path


def hotspots(path: Path) -> tuple[int, Counter, Counter]:
    total, own, inclusive = 0, Counter(), Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    return total, own, inclusive


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    arguments = parser.parse_args()
    total, own, inclusive = hotspots(arguments.profile)
    for title, counts in (("inclusive", inclusive), ("self", own)):
        print(f"--- {title} ({total} samples)")
        for frame, count in counts.most_common(arguments.top):
            print(f"{100 * count / total:5.1f}%  {frame}")
