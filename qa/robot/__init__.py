"""Robot Framework library ``qa.robot.VoipQA``: thin keywords over ``qa.cases``.

Keywords are grouped by topic in classes (calls, witnesses), composed with
robotlibcore as robotframework-browser does; every keyword delegates to the Python
API that pytest uses too, and assertions fail with the reasons of ``qa.cases.checks``.
"""

from qa.robot.library import VoipQA

__all__ = ["VoipQA"]
