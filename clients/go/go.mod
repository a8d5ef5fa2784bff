module memproof.dev/clients/go

go 1.19
