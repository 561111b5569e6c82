cwlVersion: v1.2
class: CommandLineTool
label: Cut one square out of an all-sky map
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: cutout.py
        entry:
          $include: cutout.py
      - entryname: png.py
        entry:
          $include: png.py
baseCommand: [python3, cutout.py]
inputs:
  map:
    type: File
    inputBinding: {position: 1}
  target:
    type:
      type: record
      fields:
        name: {type: string, inputBinding: {position: 2}}
        glon: {type: double, inputBinding: {position: 3}}
        glat: {type: double, inputBinding: {position: 4}}
  size:
    type: double
    inputBinding: {position: 5}
  stretch:
    type:
      type: enum
      symbols: [linear, sqrt, log]
    inputBinding: {position: 6}
outputs:
  image:
    type: File
    outputBinding: {glob: $(inputs.target.name).fits}
  preview:
    type: File
    outputBinding: {glob: $(inputs.target.name).png}
  statistics:
    type: File
    outputBinding: {glob: $(inputs.target.name).json}
