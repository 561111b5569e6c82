cwlVersion: v1.2
class: CommandLineTool
label: Find and measure the sources of one image
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: extract.py
        entry:
          $include: extract.py
baseCommand: [python3, extract.py]
inputs:
  image:
    type: File
    inputBinding: {position: 1}
  threshold:
    type: double
    inputBinding: {position: 2}
  aperture:
    type: double
    inputBinding: {position: 3}
  min_separation:
    type: int
    inputBinding: {position: 4}
arguments:
  - valueFrom: $(inputs.image.nameroot)
    position: 5
outputs:
  catalogue:
    type: File
    outputBinding: {glob: "*.sources.fits"}
  table:
    type: File
    outputBinding: {glob: "*.sources.csv"}
