## plugins/tftp (not built yet)
