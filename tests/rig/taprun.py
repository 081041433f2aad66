import sys
print("1..0 # SKIP rig not written yet")
