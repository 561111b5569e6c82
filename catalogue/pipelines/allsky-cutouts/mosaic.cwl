cwlVersion: v1.2
class: CommandLineTool
label: Lay cutouts side by side
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: mosaic.py
        entry:
          $include: mosaic.py
      - entryname: png.py
        entry:
          $include: png.py
baseCommand: [python3, mosaic.py]
inputs:
  stretch:
    type:
      type: enum
      symbols: [linear, sqrt, log]
    inputBinding: {position: 1}
  cutouts:
    type: File[]
    inputBinding: {position: 2}
outputs:
  mosaic:
    type: File
    outputBinding: {glob: mosaic.png}
