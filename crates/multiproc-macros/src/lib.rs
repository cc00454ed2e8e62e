//! `#[multiproc::shared]`: an `impl` block whose methods a manager serves, and the typed proxy
//! that calls them. Use it through the `multiproc` crate (`multiproc::shared`), whose docs show
//! it at work.
//!
//! On `impl Employee { pub fn increase(&mut self) {..} pub fn get_pay(&self) -> String {..} }`
//! it keeps the block and adds:
//! - `impl multiproc::Shared for Employee`: the dispatch the server runs, by method name, each
//!   method's arguments decoded as the tuple of its parameters' types;
//! - `pub trait EmployeeMethods` with the same methods on the proxy, each returning
//!   `Result<its result, multiproc::ManagerError>`, implemented for
//!   `multiproc::ObjectProxy<Employee>`: a misspelt method is a compile error, not a refusal at
//!   run time.
//!
//! Only `pub` methods with a `self` receiver are served; a method returning `Result<T, E>`
//! answers `T`, or fails the call with `E`'s message (`ErrorCode::MethodFailed`).

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::{FnArg, Ident, ImplItem, ItemImpl, Pat, ReturnType, Type, Visibility, parse_macro_input};

/// See the crate's docs.
#[proc_macro_attribute]
pub fn shared(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(Span::call_site(), "#[multiproc::shared] takes no arguments")
            .to_compile_error()
            .into();
    }
    let block = parse_macro_input!(item as ItemImpl);
    match expand(&block) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// A served method: its name, its parameters (names and types) and what it returns.
struct Method {
    name: Ident,
    params: Vec<(Ident, Type)>,
    output: Type,
    fallible: bool,
}

fn expand(block: &ItemImpl) -> syn::Result<proc_macro2::TokenStream> {
    if block.trait_.is_some() || !block.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &block.self_ty,
            "#[multiproc::shared] goes on a plain `impl Type { .. }` block of a type without generics",
        ));
    }
    let Type::Path(path) = &*block.self_ty else {
        return Err(syn::Error::new_spanned(
            &block.self_ty,
            "expected a type's name",
        ));
    };
    let ty = &block.self_ty;
    let type_ident = &path
        .path
        .segments
        .last()
        .expect("a path has a segment")
        .ident;
    let type_name = type_ident.to_string();
    let methods = served(block)?;
    let arms = methods.iter().map(|m| {
        let name = &m.name;
        let text = name.to_string();
        let names: Vec<_> = m.params.iter().map(|(n, _)| n).collect();
        let types: Vec<_> = m.params.iter().map(|(_, t)| t).collect();
        let result = if m.fallible {
            quote! {
                self.#name(#(#names),*)
                    .map_err(|e| ::multiproc::CallError::Failed(e.to_string()))?
            }
        } else {
            quote! { self.#name(#(#names),*) }
        };
        quote! {
            #text => {
                let (#(#names,)*): (#(#types,)*) = args.decode()?;
                let result = #result;
                ::multiproc::Reply::of(&result)
            }
        }
    });
    let trait_ident = format_ident!("{}Methods", type_ident);
    let signatures: Vec<_> = methods
        .iter()
        .map(|m| {
            let name = &m.name;
            let output = &m.output;
            let params = m.params.iter().map(|(n, t)| quote! { #n: #t });
            quote! {
                fn #name(&self, #(#params),*) -> ::std::result::Result<#output, ::multiproc::ManagerError>
            }
        })
        .collect();
    let bodies = methods.iter().zip(&signatures).map(|(m, signature)| {
        let text = m.name.to_string();
        let names: Vec<_> = m.params.iter().map(|(n, _)| n).collect();
        quote! {
            #signature {
                self.call(#text, &(#(#names,)*))
            }
        }
    });
    let docs = format!(
        "The methods of [`{type_name}`] on its proxy, `ObjectProxy<{type_name}>`: each one round \
         trip, run by the manager one call at a time (made by `#[multiproc::shared]`)."
    );
    // Served methods are `pub`: so is the trait that calls them.
    Ok(quote! {
        #block

        impl ::multiproc::Shared for #ty {
            const TYPE_NAME: &'static str = #type_name;

            fn call(
                &mut self,
                method: &str,
                args: ::multiproc::Args,
            ) -> ::std::result::Result<::multiproc::Reply, ::multiproc::CallError> {
                match method {
                    #(#arms)*
                    other => ::std::result::Result::Err(::multiproc::CallError::not_exposed(other)),
                }
            }
        }

        #[doc = #docs]
        pub trait #trait_ident {
            #(#[allow(missing_docs)] #signatures;)*
        }

        impl #trait_ident for ::multiproc::ObjectProxy<#ty> {
            #(#bodies)*
        }
    })
}

/// The `pub` methods with a `self` receiver.
fn served(block: &ItemImpl) -> syn::Result<Vec<Method>> {
    let mut methods = Vec::new();
    for item in &block.items {
        let ImplItem::Fn(function) = item else {
            continue;
        };
        if !matches!(function.vis, Visibility::Public(_)) || function.sig.receiver().is_none() {
            continue;
        }
        let mut params = Vec::new();
        for input in function.sig.inputs.iter().skip(1) {
            let FnArg::Typed(typed) = input else {
                continue;
            };
            let Pat::Ident(pattern) = &*typed.pat else {
                return Err(syn::Error::new_spanned(
                    &typed.pat,
                    "a served method's parameters are plain names",
                ));
            };
            params.push((pattern.ident.clone(), (*typed.ty).clone()));
        }
        let (output, fallible) = match &function.sig.output {
            ReturnType::Default => (syn::parse_quote!(()), false),
            ReturnType::Type(_, ty) => match ok_type(ty) {
                Some(ok) => (ok, true),
                None => ((**ty).clone(), false),
            },
        };
        methods.push(Method {
            name: function.sig.ident.clone(),
            params,
            output,
            fallible,
        });
    }
    Ok(methods)
}

/// `T` of a return type `Result<T, E>`.
fn ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(ok) => Some(ok.clone()),
        _ => None,
    }
}
