cwlVersion: v1.2
class: CommandLineTool
label: Merge the catalogues and cross-match them with a reference
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: compare.py
        entry:
          $include: compare.py
baseCommand: [python3, compare.py]
inputs:
  radius:
    type: double
    inputBinding: {position: 1}
  truth:
    type: File?
    inputBinding: {position: 2, prefix: --truth}
  catalogues:
    type: File[]
    inputBinding: {position: 3}
outputs:
  sources:
    type: File
    outputBinding: {glob: sources.fits}
  sources_csv:
    type: File
    outputBinding: {glob: sources.csv}
  report:
    type: File
    outputBinding: {glob: report.json}
